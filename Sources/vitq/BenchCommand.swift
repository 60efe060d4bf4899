import ArgumentParser
import Foundation
import VitqFormats
import VitqModels
import VitqQuant
import VitqRuntime
import VitqTensor

/// `vitq bench`: speed measurements with JSON output.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Benchmarks (JSON with --json).",
                                                    subcommands: [Fp32.self, GemmBench.self, ModelBench.self, SearchBench.self, DistributedBench.self])

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
                    let enc = JSONEncoder()
                    enc.outputFormatting = [.sortedKeys]
                    struct Report: Encodable {
                        var benchmark = "fp32", model: String, threads: Int, iterations: Int
                        var configs: [Fp32Benchmark.Row]
                    }
                    let data = try enc.encode(Report(model: name, threads: Parallel.threads, iterations: iterations, configs: rows))
                    print(String(decoding: data, as: UTF8.self))
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
                    struct Report: Encodable { var benchmark = "gemm", iterations: Int, speedup: Double, configs: [Int8Benchmark.GemmRow] }
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
                    if let (name, swin) = try benchSwin(m) {
                        rows += Int8Benchmark.model(name: name, fp32: swin, int8: Int8Benchmark.quantizeForTiming(swin, activationGranularity: g),
                                                    batches: batch, iterations: iterations)
                    } else {
                        let (name, fp) = m.hasPrefix("synthetic:") ? try benchModel(path: nil, arch: String(m.dropFirst(10))) : try benchModel(path: m, arch: "")
                        rows += Int8Benchmark.model(name: name, fp32: fp, int8: Int8Benchmark.quantizeForTiming(fp, activationGranularity: g),
                                                    batches: batch, iterations: iterations)
                    }
                }
                let speedup = Int8Benchmark.medianSpeedup(rows.map(\.speedup))
                if json {
                    struct Report: Encodable {
                        var benchmark = "model", threads: Int, iterations: Int, activationGranularity: String, speedup: Double
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
                    struct Report: Encodable { var benchmark = "search", model: String, threads: Int, speedup: Double, configs: [SearchBenchmark.Row] }
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

extension BenchCommand {
    /// `vitq bench distributed`: CPU overhead and wall-time scaling of local workers.
    struct DistributedBench: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "distributed",
            abstract: "Distributed calibration with 1, 2 and 4 one-thread local workers: CPU seconds of all processes, search wall time, output sha256.")
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
                let identical = Set(rows.map(\.sha256)).count == 1
                if json {
                    struct Report: Encodable {
                        var benchmark = "distributed", recipe: String, calibration_images: Int, cores: Int
                        var cpu_overhead_4_workers: Double?, wall_ratio_2_workers: Double?, identical_output: Bool
                        var configs: [DistributedBenchmark.Row]
                    }
                    try printJSON(Report(recipe: r.name, calibration_images: range.count, cores: ProcessInfo.processInfo.activeProcessorCount,
                                         cpu_overhead_4_workers: cpu4, wall_ratio_2_workers: wall2, identical_output: identical, configs: rows))
                } else {
                    print("workers  wall s  search s  cpu s   wire MiB  sha256")
                    for x in rows {
                        print(String(format: "%7d %7.1f %9.1f %6.1f %10.1f  %@", x.workers, x.wall_seconds, x.search_seconds, x.cpu_seconds,
                                     Double(x.wire_bytes) / 1048576, String(x.sha256.prefix(16)) as NSString))
                    }
                    if let cpu4 { print(String(format: "cpu overhead, 4 workers vs 1: %.3f", cpu4)) }
                    if let wall2 { print(String(format: "search wall time, 2 workers vs 1: %.3f", wall2)) }
                    print("identical output: \(identical ? "yes" : "no")")
                }
            }
        }
    }
}

/// The model a benchmark runs: the file at `path`, or else a random model of `arch` made through a
/// temporary file (removed at once). Returns its display name and the model.
func benchModel(path: String?, arch: String) throws -> (String, VisionTransformer) {
    if let path { return (path, try VisionTransformer(path: path)) }
    let tmp = NSTemporaryDirectory() + "vitq-bench-\(getpid())-\(arch).safetensors"
    try SyntheticModel.vit(arch: arch).write(to: tmp)
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    return ("synthetic \(arch)", try VisionTransformer(path: tmp))
}

/// The Swin a benchmark runs, when `spec` names one: a file holding a Swin state dict, or
/// `synthetic:swin-tiny|swin-small` (made through a temporary file, removed at once).
func benchSwin(_ spec: String) throws -> (String, SwinTransformer)? {
    if spec.hasPrefix("synthetic:") {
        let arch = String(spec.dropFirst("synthetic:".count))
        guard let config = SyntheticModel.swinAliases[arch] else { return nil }
        let tmp = NSTemporaryDirectory() + "vitq-bench-\(getpid())-\(arch).safetensors"
        try SyntheticModel.swin(config, name: arch).write(to: tmp)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        return ("synthetic \(arch)", try SwinTransformer(path: tmp))
    }
    guard ModelLoader.isSwin(try SafeTensorsFile(path: spec)) else { return nil }
    return (spec, try SwinTransformer(path: spec))
}

/// Prints `value` as one line of JSON with sorted keys.
func printJSON<T: Encodable>(_ value: T) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys]
    print(String(decoding: try enc.encode(value), as: UTF8.self))
}
