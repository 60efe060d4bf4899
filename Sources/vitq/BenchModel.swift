import ArgumentParser
import Foundation
import VitqFormats
import VitqModels
import VitqQuant
import VitqRuntime
import VitqTensor

extension BenchCommand {
    /// `vitq bench model`: the int8 engine against fp32, end to end.
    struct ModelBench: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "model",
            abstract: "The int8 engine against fp32 end to end (every linear op and attention product quantized).")
        @Option(help: "Float model file (repeatable); default: the synthetic --arch models.")
        var model: [String] = []
        @Option(help: "Synthetic architectures to make in memory when no --model is given (repeatable).")
        var arch: [String] = []
        @Option(help: "Batch size (repeatable).")
        var batch: [Int] = [1, 8, 32]
        @Option(help: "Timed repetitions per batch size (the median is reported).")
        var iterations: Int = 5
        @Option(help: "Linear-op inputs: per_tensor (static scales) or per_token (dynamic, as vitq-w8a8).")
        var activationGranularity = "per_tensor"
        @Flag(help: "Print one JSON object.")
        var json = false
        @OptionGroup var threadOptions: ThreadOptions

        func validate() throws {
            if batch.contains(where: { $0 < 1 }) { throw ValidationError("--batch must be at least 1") }
            if iterations < 1 { throw ValidationError("--iterations must be at least 1") }
            if !["per_tensor", "per_token"].contains(activationGranularity) {
                throw ValidationError("--activation-granularity must be per_tensor or per_token")
            }
            if model.isEmpty && arch.isEmpty { throw ValidationError("give --model FILE or --arch NAME (e.g. vit-small, swin-tiny)") }
        }

        func run() throws {
            try reportingErrors {
                threadOptions.apply()
                var rows: [Int8Benchmark.ModelRow] = []
                let g = Granularity(rawValue: activationGranularity)!
                for m in model + arch.map({ "synthetic:" + $0 }) {
                    let (name, fp) = try benchAnyModel(m)
                    rows += Int8Benchmark.model(name: name, fp32: fp, int8: try Int8Benchmark.quantizeForTiming(fp, activationGranularity: g),
                                                batches: batch, iterations: iterations)
                }
                let speedup = Int8Benchmark.medianSpeedup(rows.map(\.speedup))
                if json {
                    struct Report: Encodable {
                        var benchmark = "model", machine = BuildInfo.machine, threads: Int, iterations: Int, activationGranularity: String, speedup: Double
                        var configs: [Int8Benchmark.ModelRow]
                    }
                    try printJSON(Report(threads: Parallel.threads, iterations: iterations, activationGranularity: activationGranularity,
                                         speedup: speedup, configs: rows))
                } else {
                    print("model                                batch  fp32 img/s  int8 img/s  speedup")
                    for r in rows {
                        print(String(format: "%-36@ %5d  %10.1f  %10.1f  %7.2f", r.model as NSString, r.batch, r.fp32ImagesPerSecond, r.int8ImagesPerSecond, r.speedup))
                    }
                    print(String(format: "median speedup %.2f", speedup))
                }
            }
        }
    }
}
