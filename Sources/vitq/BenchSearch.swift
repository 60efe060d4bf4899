import ArgumentParser
import Foundation
import VitqRuntime
import VitqTensor

extension BenchCommand {
    /// `vitq bench search`: candidate scoring with the int8 kernels against float fake quantization.
    struct SearchBench: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "search",
            abstract: "Stage-2 candidate scoring: exact int8 kernels against float fake quantization, same op, data and candidates.")
        @Option(help: "Float model file; without it a random model of --arch is made in memory.")
        var model: String?
        @Option(help: "Architecture of the in-memory random model.")
        var arch: String = "vit-tiny"
        @Option(help: "Calibration images in the shard.")
        var images: Int = 8
        @Option(help: "Candidates per operand.")
        var candidates: Int = 20
        @Option(help: "Timed repetitions (the median is reported).")
        var iterations: Int = 3
        @Flag(help: "Print one JSON object.")
        var json = false
        @OptionGroup var threadOptions: ThreadOptions

        func validate() throws {
            if images < 1 || candidates < 1 || iterations < 1 { throw ValidationError("--images, --candidates and --iterations must be at least 1") }
        }

        func run() throws {
            try reportingErrors {
                threadOptions.apply()
                let (name, vit) = try benchModel(path: model, arch: arch)
                let rows = try SearchBenchmark.run(model: vit, images: images, candidates: candidates, iterations: iterations)
                let speedup = Int8Benchmark.medianSpeedup(rows.map(\.speedup))
                if json {
                    struct Report: Encodable { var benchmark = "search", machine = BuildInfo.machine, model: String, threads: Int, speedup: Double, configs: [SearchBenchmark.Row] }
                    try printJSON(Report(model: name, threads: Parallel.threads, speedup: speedup, configs: rows))
                } else {
                    print("op                   operand  int8 cand/s  float cand/s  speedup  same winner")
                    for r in rows {
                        print(String(format: "%-20@ %-7@ %12.1f %13.1f %8.2f  %@", r.op as NSString, r.operand as NSString,
                                     r.integerEvaluationsPerSecond, r.floatEvaluationsPerSecond, r.speedup, (r.sameWinner ? "yes" : "no") as NSString))
                    }
                    print(String(format: "median speedup %.2f", speedup))
                }
            }
        }
    }
}
