import Foundation
import VitqModels
import VitqTensor

/// `vitq bench fp32`: the model's own GEMMs timed alone, then the whole forward pass, in one run.
public enum Fp32Benchmark {
    /// Figures for one batch size.
    public struct Row: Codable, Sendable {
        public var batch: Int
        public var gemmOnlyImagesPerSecond: Double
        public var modelImagesPerSecond: Double
        /// Model throughput over GEMM-only throughput (1 = no time outside GEMMs).
        public var ratio: Double
        /// Share of the forward pass's time spent outside GEMMs.
        public var nonGemmShare: Double
        public var gemmGflops: Double
        public var gemmCount: Int

        enum CodingKeys: String, CodingKey {
            case batch, ratio
            case gemmOnlyImagesPerSecond = "gemm_only_images_per_second"
            case modelImagesPerSecond = "model_images_per_second"
            case nonGemmShare = "non_gemm_share"
            case gemmGflops = "gemm_gflops"
            case gemmCount = "gemm_count"
        }
    }

    /// Seconds taken by `body`.
    static func time(_ body: () -> Void) -> Double {
        let t0 = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    }

    /// A batch of `count` images of uniform noise in [−1, 1), seeded: benchmark inputs.
    static func noiseImages(_ c: ViTConfig, count: Int, seed: UInt64) -> Tensor {
        noiseImages(size: c.imgSize, count: count, seed: seed)
    }

    /// Uniform [−1, 1) RGB images [count, 3, size, size].
    static func noiseImages(size: Int, count: Int, seed: UInt64) -> Tensor {
        let input = Tensor(zeros: [count, 3, size, size])
        var rng = SeededRandom(seed: seed)
        for i in 0..<input.count { input.data[i] = Float(rng.uniform() * 2 - 1) }
        return input
    }

    static func median(_ v: [Double]) -> Double {
        let s = v.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// Measures `model` at each batch size, `iterations` interleaved repetitions each (medians).
    public static func run(model: VisionTransformer, batches: [Int], iterations: Int) -> [Row] {
        batches.map { b in
            let input = noiseImages(model.config, count: b, seed: 1)
            let shapes = GemmRecorder.recording { _ = model.forward(input) }
            let scratch = GemmScratch(for: shapes)
            Gemm.replay(shapes, scratch: scratch)
            var tm: [Double] = [], tg: [Double] = []
            for _ in 0..<max(1, iterations) {
                tg.append(time { Gemm.replay(shapes, scratch: scratch) })
                tm.append(time { _ = model.forward(input) })
            }
            let g = median(tg), m = median(tm)
            let flops = shapes.reduce(0) { $0 + $1.flops }
            return Row(batch: b, gemmOnlyImagesPerSecond: Double(b) / g, modelImagesPerSecond: Double(b) / m,
                       ratio: g / m, nonGemmShare: max(0, (m - g) / m), gemmGflops: flops / g / 1e9,
                       gemmCount: shapes.reduce(0) { $0 + $1.batch })
        }
    }
}
