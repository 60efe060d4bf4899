import ArgumentParser
import Foundation
import VitqRuntime

extension BenchCommand {
    /// `vitq bench gemm`: int8 GEMM against OpenBLAS sgemm on ViT-S/B layer shapes.
    struct GemmBench: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "gemm",
            abstract: "int8 GEMM (packed, fused epilogue) against OpenBLAS sgemm on ViT-S/B layer shapes, M = 1576, in one run.")
        @Option(name: .customLong("threads"), help: "Thread counts to measure (repeatable).")
        var threads: [Int] = [1, 2]
        @Option(help: "Timed repetitions per configuration (the median is reported).")
        var iterations: Int = 7
        @Flag(help: "Print one JSON object.")
        var json = false

        func validate() throws {
            if threads.contains(where: { $0 < 1 }) { throw ValidationError("--threads must be at least 1") }
            if iterations < 1 { throw ValidationError("--iterations must be at least 1") }
        }

        func run() throws {
            try reportingErrors {
                let rows = Int8Benchmark.gemm(threads: threads, iterations: iterations)
                let speedup = Int8Benchmark.medianSpeedup(rows.map(\.speedup))
                if json {
                    struct Report: Encodable { var benchmark = "gemm", machine = BuildInfo.machine, iterations: Int, speedup: Double, configs: [Int8Benchmark.GemmRow] }
                    try printJSON(Report(iterations: iterations, speedup: speedup, configs: rows))
                } else {
                    print("shape                 threads  sgemm GFLOP/s  int8 GOP/s  (+quantize)  speedup")
                    for r in rows {
                        print(String(format: "%-16@ %4dx%4dx%4d %d  %13.1f  %10.1f  %11.1f  %6.2f", r.name as NSString, r.m, r.n, r.k, r.threads,
                                     r.sgemmGflops, r.int8Gops, r.int8WithQuantizeGops, r.speedup))
                    }
                    print(String(format: "median speedup %.2f", speedup))
                }
            }
        }
    }
}
