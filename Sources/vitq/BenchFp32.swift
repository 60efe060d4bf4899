import ArgumentParser
import Foundation
import VitqRuntime
import VitqTensor

extension BenchCommand {
    /// `vitq bench fp32`: GEMMs alone vs the whole forward pass.
    struct Fp32: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Time the model's own GEMMs alone, then the whole fp32 forward pass, in one run.")

        @Option(help: "Model file; without it a random model of --arch is made in memory.")
        var model: String?
        @Option(help: "Architecture of the in-memory random model (vit-tiny, vit-small, vit-base, deit-small).")
        var arch: String = "vit-tiny"
        @Option(help: "Batch size (repeatable).")
        var batch: [Int] = [1, 8, 32]
        @Option(help: "Timed repetitions per batch size (the median is reported).")
        var iterations: Int = 5
        @Flag(help: "Print one JSON object.")
        var json = false
        @OptionGroup var threadOptions: ThreadOptions

        func validate() throws {
            if batch.contains(where: { $0 < 1 }) { throw ValidationError("--batch must be at least 1") }
            if iterations < 1 { throw ValidationError("--iterations must be at least 1") }
        }

        func run() throws {
            try reportingErrors {
                threadOptions.apply()
                let (name, vit) = try benchModel(path: model, arch: arch)
                let rows = Fp32Benchmark.run(model: vit, batches: batch, iterations: iterations)
                if json {
                    struct Report: Encodable { var benchmark = "fp32", machine = BuildInfo.machine, model: String, threads: Int, iterations: Int, configs: [Fp32Benchmark.Row] }
                    try printJSON(Report(model: name, threads: Parallel.threads, iterations: iterations, configs: rows))
                } else {
                    print("model \(name), \(Parallel.threads) threads, median of \(iterations)")
                    print("batch  gemm-only img/s  model img/s  ratio  non-GEMM share  GEMM GFLOP/s")
                    for r in rows {
                        print(String(format: "%5d  %15.1f  %11.1f  %5.3f  %14.1f%%  %12.1f", r.batch, r.gemmOnlyImagesPerSecond,
                                     r.modelImagesPerSecond, r.ratio, r.nonGemmShare * 100, r.gemmGflops))
                    }
                }
            }
        }
    }
}
