import Foundation
import XCTest
import VitqModels
@_spi(Testing) import VitqQuant
import VitqTensor
import VitqTestSupport

/// The hand-written backward of block reconstruction against finite differences and a hand
/// computation, on the tiny random ViT (embed 8, 2 heads, 5 tokens, MLP 16).
final class ReconstructionGradientTests: XCTestCase {
    static let images = 3

    func model() throws -> VisionTransformer {
        let dir = NSTemporaryDirectory() + "vitq-recon-grad-\(getpid())"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return try VisionTransformer(path: try TinyViTFile.write(to: dir + "/tiny.safetensors"))
    }

    static func random(_ n: Int, seed: UInt64, std: Double = 1, mean: Double = 0) -> Tensor {
        var rng = SeededRandom(seed: seed)
        return Tensor(shape: [n], values: (0..<n).map { _ in Float(mean + std * rng.normal()) })
    }

    /// 4-bit per-channel weight steps 1.3 × max|w|/7, so that no weight reaches the grid's ends.
    static func weightQuant(_ lin: Linear) -> TensorQuant {
        let scheme = QuantScheme(bits: 4, signed: true, narrow: true)
        let scales = (0..<lin.outFeatures).map { o in
            1.3 * Ops.maxAbs(lin.weight.data + o * lin.inFeatures, cols: lin.inFeatures) / Float(scheme.qmax)
        }
        return TensorQuant(scheme: scheme, granularity: .perChannel, scales: scales)
    }

    static func inputQuant(step: Float) -> OperandQuant {
        .uniform(TensorQuant(scheme: QuantScheme(bits: 4, signed: true, narrow: false), granularity: .perTensor, scales: [step]))
    }

    /// Logits in [−2, 2], where h = 1.2σ(v) − 0.1 stays inside (0, 1) under the differences'
    /// steps (|v| below 2.4) (at the search's start, a weight whose w/s is near an integer sits at h's clamp).
    static func interiorLogits(_ logits: [String: [Float]]) -> [String: [Float]] {
        var rng = SeededRandom(seed: 99)
        var out: [String: [Float]] = [:]
        for k in logits.keys.sorted() { out[k] = logits[k]!.map { _ in rng.symmetric(2) } }
        return out
    }

    /// Central differences of `loss` along `direction` against the gradient's projection on it.
    func checkDirectional(_ probe: ReconstructionProbe, direction: [String: [Float]], gradient: [String: [Float]], epsilon: Float,
                          file: StaticString = #filePath, line: UInt = #line) {
        let base = probe.logits
        func shifted(_ t: Float) -> [String: [Float]] {
            base.mapValues { $0 }.merging(direction.map { k, d in (k, zip(base[k]!, d).map { $0 + t * $1 }) }) { $1 }
        }
        probe.logits = shifted(epsilon); let up = probe.loss()
        probe.logits = shifted(-epsilon); let down = probe.loss()
        probe.logits = base
        let numeric = (up - down) / Double(2 * epsilon)
        // The forward is Float: the loss carries a relative rounding noise of about 2e-8, which
        // the difference quotient divides by ε.
        let noise = 1e-7 * abs(probe.loss()) / Double(epsilon)
        var analytic = 0.0
        for (k, d) in direction { for (g, di) in zip(gradient[k]!, d) { analytic += Double(g) * Double(di) } }
        XCTAssertGreaterThan(abs(analytic), 1e-6, "the gradient along the direction is zero", file: file, line: line)
        XCTAssertEqual(numeric, analytic, accuracy: 2e-3 * abs(analytic) + noise, "finite difference \(numeric), backward \(analytic)", file: file, line: line)
    }

    /// The rounding logits of every linear op of a block, through attention, both LayerNorms,
    /// GELU and the residual stream, with the regulariser at β = 4 (the activations float, so
    /// the loss is smooth in the logits).
    func testBlockRoundingGradientMatchesFiniteDifferences() throws {
        let vit = try model(), c = vit.config, rows = Self.images * c.tokens, e = c.embedDim
        var decisions: [String: OpDecision] = [:]
        for (name, op) in vit.linearOps where name.hasPrefix("blocks.0.") {
            decisions[name] = OpDecision(op: name, quantizers: [.uniform(Self.weightQuant(op as! Linear)), Self.inputQuant(step: 0.1)], bias: nil)
        }
        let probe = ReconstructionProbe(model: vit, block: 0, decisions: decisions, quantizesInputs: false,
                                        input: Self.random(rows * e, seed: 3), target: Self.random(rows * e, seed: 4),
                                        weights: Self.random(rows * e, seed: 5, std: 0.2, mean: 1.5), images: Self.images,
                                        lambda: 0.01, beta: 4)
        probe.logits = Self.interiorLogits(probe.logits)
        let g = probe.gradients().logits
        XCTAssertEqual(Set(g.keys), Set(decisions.keys))
        for seed in 0..<4 {
            var rng = SeededRandom(seed: UInt64(100 + seed))
            var direction: [String: [Float]] = [:]
            for k in g.keys.sorted() { direction[k] = g[k]!.map { _ in Float(rng.normal()) } }
            checkDirectional(probe, direction: direction, gradient: g, epsilon: 1e-2)
        }
        // One op at a time, so that a wrong op is not hidden by the others.
        for name in decisions.keys.sorted() {
            var rng = SeededRandom(seed: 7)
            checkDirectional(probe, direction: [name: g[name]!.map { _ in Float(rng.normal()) }], gradient: g, epsilon: 1e-2)
        }
    }

    /// A linear op alone with a 4-bit input: the rounding logits by finite differences, and the
    /// input step's LSQ gradient s · Σ (∂L/∂x̂)(round(x/s) − x/s) (qmin or qmax where x clips)
    /// against a hand computation of ∂L/∂x̂ in Double.
    func testLinearUnitGradientsMatchFiniteDifferencesAndHandComputation() throws {
        let vit = try model(), lin = vit.linearOps.first { $0.name == "blocks.0.mlp.fc1" }!.op as! Linear
        let rowsPerImage = 4, rows = Self.images * rowsPerImage, k = lin.inFeatures, n = lin.outFeatures
        let step: Float = 0.3
        let decision = OpDecision(op: "fc1", quantizers: [.uniform(Self.weightQuant(lin)), Self.inputQuant(step: step)], bias: nil)
        let x = Self.random(rows * k, seed: 11, std: 1.5), t = Self.random(rows * n, seed: 12), w = Self.random(rows * n, seed: 13, std: 0.2, mean: 1.5)
        let probe = ReconstructionProbe(linear: "fc1", float: lin, decision: decision, rowsPerImage: rowsPerImage,
                                        input: x, target: t, weights: w, images: Self.images)
        probe.logits = Self.interiorLogits(probe.logits)
        let (g, steps) = probe.gradients()
        var rng = SeededRandom(seed: 21)
        checkDirectional(probe, direction: ["fc1": g["fc1"]!.map { _ in Float(rng.normal()) }], gradient: g, epsilon: 1e-2)

        // By hand: x̂, Ŵ (soft), ŷ, ∂L/∂ŷ = 2 w (ŷ − t)/rows, ∂L/∂x̂ = ∂L/∂ŷ · Ŵ.
        let soft = SoftRounding(weight: lin.weight.data, rows: n, cols: k, quant: Self.weightQuant(lin))
        soft.logits = probe.logits["fc1"]!
        let wq = Tensor(zeros: [n * k]); soft.weight(hard: false, into: wq.data)
        let lo = -8.0, hi = 7.0
        func code(_ v: Float) -> Double { Double((v * (1 / step)).rounded(.toNearestOrEven)) }
        var expected = 0.0, clipped = 0
        for r in 0..<rows {
            var dy = [Double](repeating: 0, count: n)
            for o in 0..<n {
                var y = Double(lin.bias!.data[o])
                for i in 0..<k { y += min(max(code(x.data[r * k + i]), lo), hi) * Double(step) * Double(wq.data[o * k + i]) }
                dy[o] = 2 * Double(w.data[r * n + o]) * (y - Double(t.data[r * n + o])) / Double(rows)
            }
            for i in 0..<k {
                var dx = 0.0
                for o in 0..<n { dx += dy[o] * Double(wq.data[o * k + i]) }
                let c = code(x.data[r * k + i]), u = Double(x.data[r * k + i]) / Double(step)
                if c < lo { expected += dx * lo; clipped += 1 } else if c > hi { expected += dx * hi; clipped += 1 } else { expected += dx * (c - u) }
            }
        }
        expected *= Double(step)
        XCTAssertGreaterThan(clipped, 0, "the test wants values beyond the grid")
        XCTAssertEqual(steps.count, 1)
        XCTAssertEqual(steps[0][0], expected, accuracy: 1e-4 * max(1, abs(expected)))
    }

    /// The regulariser pushes every rounding to 0 or 1, and the hard rounding is [v ≥ 0].
    func testSoftRoundingStartsAtTheWeightAndHardensToNeighbours() throws {
        let vit = try model(), lin = vit.linearOps.first { $0.name == "blocks.0.attn.proj" }!.op as! Linear
        let q = Self.weightQuant(lin), n = lin.outFeatures, k = lin.inFeatures
        let soft = SoftRounding(weight: lin.weight.data, rows: n, cols: k, quant: q)
        let start = Tensor(zeros: [n * k]), hard = Tensor(zeros: [n * k])
        soft.weight(hard: false, into: start.data)
        soft.weight(hard: true, into: hard.data)
        for i in 0..<(n * k) {
            let s = q.scales[i / k], x = lin.weight.data[i]
            XCTAssertEqual(start.data[i], x, accuracy: 1e-5 * max(1, abs(x)), "soft rounding starts at the weight")
            XCTAssertEqual(hard.data[i], (x / s).rounded(.toNearestOrEven) * s, accuracy: 1e-6, "hard rounding starts at the nearest")
        }
    }
}
