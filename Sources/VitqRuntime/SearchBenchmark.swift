import Foundation
import VitqModels
import VitqQuant
import VitqTensor

/// `vitq bench search`: stage-2 candidate scoring with the int8 kernels against float fake
/// quantization (fake-quantize, sgemm, score), on the same op, data and candidates, interleaved.
public enum SearchBenchmark {
    public struct Row: Codable, Sendable {
        public var op: String, operand: String, images: Int, candidates: Int
        public var integerEvaluationsPerSecond: Double, floatEvaluationsPerSecond: Double, speedup: Double
        /// Whether both arithmetics choose the same candidate.
        public var sameWinner: Bool
        enum CodingKeys: String, CodingKey {
            case op, operand, images, candidates, speedup
            case integerEvaluationsPerSecond = "integer_evaluations_per_second"
            case floatEvaluationsPerSecond = "float_fake_quant_evaluations_per_second"
            case sameWinner = "same_winner"
        }
    }

    /// The linear ops of block 0 scored on `images` images of Gaussian inputs (the float layer's
    /// outputs, random gradients), `candidates` candidates for the weight and for the input.
    public static func run(model: VisionTransformer, images: Int, candidates: Int, iterations: Int) throws -> [Row] {
        let b = model.blocks[0]
        let ops: [(String, Linear)] = [("blocks.0.attn.qkv", b.qkv as! Linear), ("blocks.0.mlp.fc1", b.fc1 as! Linear),
                                       ("blocks.0.mlp.fc2", b.fc2 as! Linear)]
        let store = CalibrationStore(images: 0..<images)
        var rng = SeededRandom(seed: 11)
        let rows = model.config.tokens
        for (name, lin) in ops {
            let x = try store.tensor("\(name).input", imageShape: [rows, lin.inFeatures])
            let o = try store.tensor("\(name).output", imageShape: [rows, lin.outFeatures])
            let g = try store.tensor("\(name).grad", imageShape: [rows, lin.outFeatures])
            for i in 0..<images {
                for j in 0..<x.perImage { x.image(i)[j] = Float(rng.normal()) }
                lin.forward(x.image(i), rows: rows, into: o.image(i))
                for j in 0..<g.perImage { g.image(i)[j] = Float(rng.normal()) * 1e-3 }
            }
        }
        let integer = CandidateScorer(model: model, store: store)
        let float = CandidateScorer(model: model, store: store)
        float.arithmetic = .floatFakeQuant
        var out: [Row] = []
        for (name, lin) in ops {
            let n = lin.outFeatures, k = lin.inFeatures
            let wmax = Ops.maxAbs(lin.weight.data, cols: n * k)
            let w = TensorQuant(scheme: QuantScheme(bits: 8, signed: true, narrow: true), granularity: .perTensor, scales: [wmax / 127.5])
            let xq = TensorQuant(scheme: QuantScheme(bits: 8, signed: true), granularity: .perTensor, scales: [4 / 127.5])
            let mults = CandidateSet.linear(alpha: 0.5, beta: 1.2, count: candidates)
            for (operand, base) in [(SearchOperand.first, w), (.second, xq)] {
                let task = SearchTask(op: name, operand: operand, candidates: CandidateSet(base: .uniform(base), multipliers: mults),
                                      current: [.uniform(w), .uniform(xq)], groups: 1, metric: .hessian)
                var ti: [Double] = [], tf: [Double] = []
                var wi: [Int] = [], wf: [Int] = []
                for _ in 0..<iterations {
                    ti.append(Fp32Benchmark.time { wi = integer.score(task).winners(task.score) })
                    tf.append(Fp32Benchmark.time { wf = float.score(task).winners(task.score) })
                }
                let i = Fp32Benchmark.median(ti), f = Fp32Benchmark.median(tf)
                out.append(Row(op: name, operand: operand == .first ? "weight" : "input", images: images, candidates: candidates,
                               integerEvaluationsPerSecond: Double(candidates) / i, floatEvaluationsPerSecond: Double(candidates) / f,
                               speedup: f / i, sameWinner: wi == wf))
            }
        }
        return out
    }
}
