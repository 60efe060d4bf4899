import Foundation
import VitqData
import VitqFormats
import VitqModels
import VitqQuant

/// `vitq bench distributed`: the same distributed calibration with 1, 2, 4… local workers of
/// one thread each, timing the search (workers' stage 1 and stage 2) and, with a recipe that
/// reconstructs in parallel mode, the block reconstruction (its units on the workers), and
/// summing the CPU seconds of every process (the coordinator's own and its reaped workers').
public enum DistributedBenchmark {
    public struct Row: Encodable, Sendable {
        public var workers: Int
        public var wall_seconds: Double
        /// Workers' stage 1 and the stage-2 search, as the coordinator sees it.
        public var search_seconds: Double
        /// Block reconstruction after the search (0 without it).
        public var reconstruct_seconds: Double
        public var cpu_seconds: Double
        public var wire_bytes: Int
        public var sha256: String
    }

    public static func run(model: any SearchableModel, modelPath: String, overrides: ModelOverrides, dataset: ImageDataset, calib: Range<Int>, recipe: Recipe,
                           workerCounts: [Int], directory: String, log: @escaping @Sendable (String) -> Void) throws -> [Row] {
        try workerCounts.map { n in
            let runDir = directory + "/workers-\(n)"
            try FileManager.default.createDirectory(atPath: runDir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: runDir) }
            let out = runDir + "/q.safetensors"
            let cpu0 = cpuSeconds(RUSAGE_SELF) + cpuSeconds(RUSAGE_CHILDREN)
            let start = Date()
            let report = try DistributedQuantization.runWithLocalWorkers(
                count: n, threads: 1, directory: runDir, model: model, modelPath: modelPath, overrides: overrides,
                dataset: dataset, calib: calib, recipe: recipe, out: out, log: log).report
            let wall = Date().timeIntervalSince(start)
            let cpu = cpuSeconds(RUSAGE_SELF) + cpuSeconds(RUSAGE_CHILDREN) - cpu0
            return Row(workers: n, wall_seconds: wall, search_seconds: report.timings.search,
                       reconstruct_seconds: report.timings.reconstruct, cpu_seconds: cpu,
                       wire_bytes: report.totalWireBytes, sha256: try SHA256.hex(ofFile: out))
        }
    }

    static func cpuSeconds(_ who: __rusage_who) -> Double {
        var u = rusage()
        getrusage(__rusage_who_t(who.rawValue), &u)
        return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
    }
}
