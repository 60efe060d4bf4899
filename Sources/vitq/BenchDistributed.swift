import ArgumentParser
import Foundation
import VitqRuntime

extension BenchCommand {
    /// `vitq bench distributed`: CPU overhead and wall-time scaling of local workers.
    struct DistributedBench: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "distributed",
            abstract: "Distributed calibration with 1, 2 and 4 one-thread local workers: CPU seconds of all processes, search and reconstruction wall time, output sha256.")
        @OptionGroup var inputs: CalibrationInputs
        @Option(help: "Worker counts, comma-separated (must include 1, 2 and 4 for the summary ratios).")
        var workers: String = "1,2,4"
        @Flag(help: "Print one JSON object.")
        var json = false

        func run() throws {
            try reportingErrors {
                let counts = workers.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
                guard !counts.isEmpty, counts.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--workers takes positive counts, e.g. 1,2,4") }
                let (r, fp, ds, range) = try inputs.open()
                let dir = NSTemporaryDirectory() + "vitq-bench-distributed-\(getpid())"
                defer { try? FileManager.default.removeItem(atPath: dir) }
                let rows = try DistributedBenchmark.run(model: fp, modelPath: inputs.model, overrides: inputs.modelOptions.overrides, dataset: ds, calib: range, recipe: r,
                                                        workerCounts: counts, directory: dir, log: { _ in })
                func row(_ n: Int) -> DistributedBenchmark.Row? { rows.first { $0.workers == n } }
                let cpu4 = row(4).flatMap { a in row(1).map { a.cpu_seconds / $0.cpu_seconds } }
                let wall2 = row(2).flatMap { a in row(1).map { a.search_seconds / $0.search_seconds } }
                func reconstructRatio(_ n: Int) -> Double? {
                    row(n).flatMap { a in row(1).flatMap { $0.reconstruct_seconds > 0 ? a.reconstruct_seconds / $0.reconstruct_seconds : nil } }
                }
                let cpu2 = row(2).flatMap { a in row(1).map { a.cpu_seconds / $0.cpu_seconds } }
                let identical = Set(rows.map(\.sha256)).count == 1
                if json {
                    struct Report: Encodable {
                        var benchmark = "distributed", machine = BuildInfo.machine, recipe: String, calibration_images: Int, cores: Int
                        var cpu_overhead_4_workers: Double?, cpu_overhead_2_workers: Double?, wall_ratio_2_workers: Double?
                        var reconstruct_wall_ratio_2_workers: Double?, reconstruct_wall_ratio_4_workers: Double?, identical_output: Bool
                        var configs: [DistributedBenchmark.Row]
                    }
                    try printJSON(Report(recipe: r.name, calibration_images: range.count, cores: ProcessInfo.processInfo.activeProcessorCount,
                                         cpu_overhead_4_workers: cpu4, cpu_overhead_2_workers: cpu2, wall_ratio_2_workers: wall2,
                                         reconstruct_wall_ratio_2_workers: reconstructRatio(2), reconstruct_wall_ratio_4_workers: reconstructRatio(4),
                                         identical_output: identical, configs: rows))
                } else {
                    print("workers  wall s  search s  reconstruct s  cpu s   wire MiB  sha256")
                    for x in rows {
                        print(String(format: "%7d %7.1f %9.1f %14.1f %6.1f %10.1f  %@", x.workers, x.wall_seconds, x.search_seconds, x.reconstruct_seconds, x.cpu_seconds,
                                     Double(x.wire_bytes) / 1048576, String(x.sha256.prefix(16)) as NSString))
                    }
                    if let cpu4 { print(String(format: "cpu overhead, 4 workers vs 1: %.3f", cpu4)) }
                    if let wall2 { print(String(format: "search wall time, 2 workers vs 1: %.3f", wall2)) }
                    for n in [2, 4] {
                        if let r = reconstructRatio(n) { print(String(format: "reconstruction wall time, %d workers vs 1: %.3f", n, r)) }
                    }
                    print("identical output: \(identical ? "yes" : "no")")
                }
            }
        }
    }
}
