import ArgumentParser
import Foundation
import VitqRuntime

/// `vitq quantize`: calibrate a float model with a recipe and write the quantized file, in
/// this process or, with `--workers N`, through N local worker processes.
struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Calibrate a float ViT, DeiT or Swin with a recipe and write one quantized .safetensors file.")

    @OptionGroup var calibration: CalibrationOptions
    @Option(help: "Run the search through this many local worker processes (ipc); the file is byte-identical to the in-process run.")
    var workers: Int = 0
    @Option(help: "With --workers N (N ≥ 2; 3 to settle a mismatch): also send this seeded fraction of units to a second worker and require byte-identical results.")
    var verify: Double = 0
    @Option(name: .customLong("deadline-floor"), help: DeadlineFloorFlag.help)
    var deadlineFloor: Double?

    func validate() throws {
        if workers < 0 { throw ValidationError("--workers must be non-negative") }
        try VerifyFlag.check(verify, workers: workers, workersFlag: "--workers")
        try DeadlineFloorFlag.check(deadlineFloor)
        if workers > FlagLimits.maxWorkers { throw FlagError("--workers \(workers) is more than \(FlagLimits.maxWorkers)") }
    }

    func run() throws {
        try reportingErrors {
            let (r, fp, ds, calibRange) = try calibration.open()
            let start = Date()
            if workers == 0 {
                let (net, timings) = try Quantization.run(model: fp, modelPath: calibration.model, dataset: ds, calib: calibRange, recipe: r,
                                                          out: calibration.out, storage: calibration.storage)
                try calibration.report(recipe: r, model: fp, dataset: ds, calib: calibRange, network: net, timings: timings,
                                       seconds: Date().timeIntervalSince(start))
                return
            }
            // A private ipc endpoint and journal; the workers get one core's worth of threads each.
            LocalWorkers.removeStaleFolders(in: NSTemporaryDirectory())   // left by runs killed with SIGKILL
            let dir = NSTemporaryDirectory() + LocalWorkers.folderPrefix() + String(UUID().uuidString.prefix(8))
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let threads = max(1, ProcessInfo.processInfo.activeProcessorCount / workers)
            var extra: [String] = []
            // Each worker gets its share of the default budget (and says so when it starts).
            let each = MemoryBudgetFlag.storage(mib: calibration.memoryBudget, spillDir: calibration.spillDir, sharing: workers)
            extra += ["--memory-budget", "\(each.memoryBudget >> 20)"]
            if let s = calibration.spillDir { extra += ["--spill-dir", s] }
            let (net, report) = try DistributedQuantization.runWithLocalWorkers(
                count: workers, threads: threads, verify: verify, deadlineFloor: deadlineFloor, workerArguments: extra, directory: dir, model: fp, modelPath: calibration.model,
                overrides: calibration.modelOptions.overrides, dataset: ds, calib: calibRange, recipe: r, out: calibration.out,
                log: stderrLine("vitq coordinator"))
            try calibration.report(recipe: r, model: fp, dataset: ds, calib: calibRange, network: net, timings: report.timings,
                                   seconds: Date().timeIntervalSince(start), extra: report.jsonFields(workers: workers),
                                   extraLines: report.lines(workers: workers))
        }
    }
}
