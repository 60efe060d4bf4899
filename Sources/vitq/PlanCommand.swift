import ArgumentParser
import Foundation
import VitqFormats
import VitqQuant
import VitqRuntime

/// `vitq plan`: predicts a calibration's wall time, CPU time, per-worker memory and bytes on
/// the wire from a one-image probe of the real stage 1 and search on this machine
/// (``CostProbe``, ``CostModel``), or from a saved profile.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Predict a calibration's time, memory and traffic from a short measurement on this machine.")

    @Argument(help: "Float model file (as for quantize).")
    var model: String
    @Option(help: "Calibration images.")
    var images: Int = 32
    @Option(help: "Worker counts to predict, comma-separated (0: in process).")
    var workers: String = "0,1,2,4"
    @Option(help: "Cores per worker (default: this machine's cores shared among the workers, like quantize --workers).")
    var cores: Int?
    @Flag(help: "The workers run on this machine (quantize --workers) and share its cores; else each has its own.")
    var local = false
    @Option(help: "A built-in recipe name or a recipe file path.")
    var recipe: String = "ptq4vit-w8a8"
    @Option(name: .customLong("memory-budget"), help: "Stage-1 memory in MiB per worker (default: unbounded).")
    var memoryBudget: Int?
    @Option(name: .customLong("shard-images"), help: "Predict with this many images per shard instead of the recipe's (the recipe key shard_images).")
    var shardImages: Int?
    @Option(help: "Read the measured profile from this JSON file instead of measuring.")
    var profile: String?
    @Option(name: .customLong("save-profile"), help: "Write the measured profile to this JSON file.")
    var saveProfile: String?
    @OptionGroup var modelOptions: ModelOptions
    @Flag(help: "Print one JSON object.")
    var json = false

    /// The parsed `--workers` list.
    var workerCounts: [Int] { workers.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    func validate() throws {
        if !(1...1 << 30).contains(images) { throw FlagError("--images must be in 1...\(1 << 30)") }
        let counts = workers.split(separator: ",")
        guard !counts.isEmpty, counts.count == workerCounts.count, workerCounts.allSatisfy({ (0...1 << 20).contains($0) }) else {
            throw FlagError("--workers must be a comma-separated list of counts in 0...\(1 << 20), got '\(workers)'")
        }
        if let c = cores, !(1...FlagLimits.maxThreads).contains(c) { throw FlagError("--cores must be in 1...\(FlagLimits.maxThreads)") }
        try MemoryBudgetFlag.check(memoryBudget)
        if let s = shardImages, !(1...100_000).contains(s) { throw FlagError("--shard-images must be in 1...100000") }
    }

    func run() throws {
        try reportingErrors {
            if let saveProfile { try OutputChecks.writableFolder(of: saveProfile, flag: "--save-profile") }
            var p: CostProfile
            if let profile {
                let data = try BoundedFile.read(profile, maxBytes: 1 << 20)
                do { p = try JSONDecoder().decode(CostProfile.self, from: data) } catch {
                    throw FlagError("--profile \(profile): not a vitq plan profile (\(error))")
                }
                if let why = p.problem { throw FlagError("--profile \(profile): \(why)") }
            } else {
                let r = try Recipe.load(recipe)
                let fp = try ModelLoader.loadFloat(path: model, overrides: modelOptions.overrides)
                FileHandle.standardError.write(Data("vitq plan: measuring one image of \(r.name) on one core...\n".utf8))
                p = try CostProbe.measure(model: fp, modelPath: model, recipe: r)
                if let saveProfile {
                    let e = JSONEncoder(); e.outputFormatting = [.sortedKeys, .prettyPrinted]
                    try AtomicFile.write(try e.encode(p), to: saveProfile)
                }
            }
            if let shardImages { p.shardImages = shardImages }
            let machineCores = ProcessInfo.processInfo.activeProcessorCount
            let predictions = workerCounts.map { w in
                CostModel.predict(p, images: images, workers: w, cores: cores ?? max(1, machineCores / max(1, w)),
                                  budget: memoryBudget.map { $0 << 20 } ?? Int.max, sharedCores: local ? machineCores : nil)
            }
            if json {
                let e = JSONEncoder(); e.outputFormatting = [.sortedKeys]
                let obj: [String: Any] = [
                    "profile": try JSONSerialization.jsonObject(with: e.encode(p)),
                    "predictions": try JSONSerialization.jsonObject(with: e.encode(predictions)),
                ]
                try printJSON(object: obj)
                return
            }
            print(String(format: "profile   %@, %@, on %@: stage 1 %.3f s/image, search %.3f s/image (%d units, %d candidates), one core",
                         p.model, p.recipe, p.cpu, p.stage1SecondsPerImage, p.stage2SecondsPerImage, p.units, p.candidateEvaluations))
            print(String(format: "memory    %@ base, %@ stored and %@ transient per image; %d images per shard",
                         ProcessMemory.describe(p.baseBytes), ProcessMemory.describe(p.storedBytesPerImage),
                         ProcessMemory.describe(p.transientBytesPerImage), p.shardImages))
            func right(_ s: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
            print("workers  cores  shards     wall   stage 1   stage 2    CPU-s  peak/worker     spilled        wire")
            for q in predictions {
                print(String(format: "%7d  %5d  %6d  %7.1f  %8.1f  %8.1f  %7.0f", q.workers, q.coresPerWorker, q.shards,
                             q.wallSeconds, q.stage1Seconds, q.stage2Seconds, q.cpuSeconds)
                      + right(ProcessMemory.describe(q.peakBytesPerWorker), 13) + right(ProcessMemory.describe(q.spilledBytesPerWorker), 12)
                      + right(ProcessMemory.describe(q.wireBytes), 12))
            }
        }
    }
}
