import CVitqKernels
import Foundation
import VitqModels
import VitqQuant
import VitqTensor

/// `vitq bench gemm` and `vitq bench model`: int8 against fp32, measured in the same run with
/// interleaved repetitions (these machines are noisy; only ratios from one run are compared).
public enum Int8Benchmark {
    /// One GEMM configuration: int8 (packed operands, fused f32 epilogue) against OpenBLAS sgemm.
    public struct GemmRow: Codable, Sendable {
        public var name: String, m: Int, n: Int, k: Int, threads: Int
        public var sgemmGflops: Double, int8Gops: Double
        /// Including the activation's quantize-and-pack pass.
        public var int8WithQuantizeGops: Double
        public var speedup: Double
        enum CodingKeys: String, CodingKey {
            case name, m, n, k, threads, speedup
            case sgemmGflops = "sgemm_gflops", int8Gops = "int8_gops", int8WithQuantizeGops = "int8_with_quantize_gops"
        }
    }

    /// ViT-S and ViT-B layer shapes at batch 8 (M = 8 × 197 = 1576).
    public static let layerShapes: [(String, Int, Int, Int)] = [
        ("vit-small qkv", 1576, 1152, 384), ("vit-small proj", 1576, 384, 384),
        ("vit-small fc1", 1576, 1536, 384), ("vit-small fc2", 1576, 384, 1536),
        ("vit-base qkv", 1576, 2304, 768), ("vit-base proj", 1576, 768, 768),
        ("vit-base fc1", 1576, 3072, 768), ("vit-base fc2", 1576, 768, 3072),
    ]

    public static func gemm(threads: [Int], iterations: Int) -> [GemmRow] {
        var rows: [GemmRow] = []
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        for t in threads {
            Parallel.threads = t
            for (name, m, n, k) in layerShapes {
                var rng = SeededRandom(seed: 5)
                let x = Tensor(zeros: [m, k]), w = Tensor(zeros: [n, k]), y = Tensor(zeros: [m, n])
                for i in 0..<x.count { x.data[i] = Float(rng.normal()) }
                for i in 0..<w.count { w.data[i] = Float(rng.normal()) * 0.05 }
                let input = TensorQuant(scheme: QuantScheme(), granularity: .perTensor, scales: [4 / 127])
                let qw = QuantizedWeight(weight: w, bias: nil, quant: TensorQuant(
                    scheme: QuantScheme(bits: 8, signed: true, narrow: true), granularity: .perTensor, scales: [0.25 / 127]))
                let packed = PackedWeight(values: qw.values, n: n, k: k)
                let pa = AlignedBuffer(byteCount: Int8Gemm.packedASize(m: m, k: k) * 4)
                let colScale = Tensor(shape: [n], values: [Float](repeating: 1e-4, count: n))
                let f32 = { Gemm.linear(x.data, rows: m, weight: w.data, outFeatures: n, inFeatures: k, bias: nil, into: y.data) }
                let quant = { Int8Gemm.quantizePackA(x.data, lda: k, m: m, k: k, quant: input, into: pa.pointer(Int32.self)) }
                let int8 = { Int8Gemm.run(packedA: pa.pointer(Int32.self), m: m, weight: packed, colScale: colScale.data, bias: nil, into: y.data, ldy: n) }
                f32(); quant(); int8()
                var tf: [Double] = [], ti: [Double] = [], tq: [Double] = []
                for _ in 0..<iterations {
                    tf.append(Fp32Benchmark.time(f32))
                    ti.append(Fp32Benchmark.time(int8))
                    tq.append(Fp32Benchmark.time(quant))
                }
                let ops = 2.0 * Double(m) * Double(n) * Double(k)
                let f = Fp32Benchmark.median(tf), i = Fp32Benchmark.median(ti), q = Fp32Benchmark.median(tq)
                rows.append(GemmRow(name: name, m: m, n: n, k: k, threads: t, sgemmGflops: ops / f / 1e9, int8Gops: ops / i / 1e9,
                                    int8WithQuantizeGops: ops / (i + q) / 1e9, speedup: f / i))
            }
        }
        return rows
    }

    /// One model configuration: the whole forward pass, int8 engine against fp32.
    public struct ModelRow: Codable, Sendable {
        public var model: String, batch: Int
        public var fp32ImagesPerSecond: Double, int8ImagesPerSecond: Double, speedup: Double
        enum CodingKeys: String, CodingKey {
            case model, batch, speedup
            case fp32ImagesPerSecond = "fp32_images_per_second", int8ImagesPerSecond = "int8_images_per_second"
        }
    }

    /// Times `fp32` and `int8` forward passes at each batch size on random inputs.
    public static func model(name: String, fp32: any ImageClassifier, int8: any ImageClassifier, batches: [Int], iterations: Int) -> [ModelRow] {
        model(name: name, imageSize: fp32.imageSize, fp32: { fp32.forward($0, observer: nil) }, int8: { int8.forward($0, observer: nil) },
              batches: batches, iterations: iterations)
    }

    static func model(name: String, imageSize: Int, fp32: (Tensor) -> Tensor, int8: (Tensor) -> Tensor,
                      batches: [Int], iterations: Int) -> [ModelRow] {
        batches.map { b in
            let input = Fp32Benchmark.noiseImages(size: imageSize, count: b, seed: 1)
            _ = fp32(input); _ = int8(input)
            var tf: [Double] = [], ti: [Double] = []
            for _ in 0..<iterations {
                tf.append(Fp32Benchmark.time { _ = fp32(input) })
                ti.append(Fp32Benchmark.time { _ = int8(input) })
            }
            let f = Fp32Benchmark.median(tf), i = Fp32Benchmark.median(ti)
            return ModelRow(model: name, batch: b, fp32ImagesPerSecond: Double(b) / f, int8ImagesPerSecond: Double(b) / i, speedup: f / i)
        }
    }

    /// A fully quantized (every linear op — a Swin's patch merging included — and attention
    /// product) minmax-w8a8 network of `fp32`, calibrated on `images` random inputs: the
    /// arithmetic the engine runs, for timing.
    public static func quantizeForTiming(_ fp32: any SearchableModel, images: Int = 2,
                                         activationGranularity: Granularity = .perTensor) throws -> any SearchableModel {
        var recipe = Recipe()
        recipe.keepFloat = 0
        recipe.activationGranularity = activationGranularity
        let cal = MinMaxCalibrator(model: fp32, recipe: recipe)
        cal.observe(Fp32Benchmark.noiseImages(size: fp32.imageSize, count: images, seed: 2))
        return try cal.finish().makeModel(.integer)
    }

    /// The median of the rows' speedups.
    public static func medianSpeedup(_ v: [Double]) -> Double { v.isEmpty ? 0 : Fp32Benchmark.median(v) }
}
