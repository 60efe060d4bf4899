import Foundation
import VitqModels
import VitqTensor

/// Max calibration of a ``SwinTransformer`` with the same rules as ``MinMaxCalibrator``:
/// weights per output channel (or tensor), each linear op's input per tensor, Q, K, V and the
/// probabilities per head over all windows. ``model(_:)`` builds the integer engine (or its
/// fake-quant reference): every linear op, the patch merging and head included, runs as an
/// integer GEMM, and both attention products per window and head.
public final class SwinMinMaxCalibrator: ForwardObserver {
    public let model: SwinTransformer
    public let recipe: Recipe
    private var maxAbs: [String: [Float]] = [:]
    private let lock = NSLock()

    public init(model: SwinTransformer, recipe: Recipe) { self.model = model; self.recipe = recipe }

    /// Runs the float model on one batch of normalised images, recording ranges.
    public func observe(_ images: Tensor) { _ = model.forward(images, observer: self) }

    public func wants(_ name: String) -> Bool {
        name.hasSuffix(".input") || name.hasSuffix(".attn.qkv") || name.hasSuffix(".attn.softmax")
    }

    /// The stage of a `layers.s.…` tap.
    private func stage(_ name: String) -> Int { Int(name.split(separator: ".")[1])! }

    public func observe(_ name: String, _ values: UnsafeBufferPointer<Float>, shape: [Int]) {
        if name.hasSuffix(".attn.qkv") {
            let s = stage(name), d = model.config.dim(s), heads = model.config.numHeads[s]
            let m = MinMaxCalibrator.qkvMaxima(values.baseAddress!, rows: values.count / (3 * d), dim: d, heads: heads)
            let base = String(name.dropLast(4))
            merge("\(base).q", Array(m[0..<heads])); merge("\(base).k", Array(m[heads..<2 * heads])); merge("\(base).v", Array(m[(2 * heads)...]))
        } else if name.hasSuffix(".attn.softmax") {
            // [windows, heads, n, n]
            let heads = shape[1], per = shape[2] * shape[3]
            var m = [Float](repeating: 0, count: heads)
            for i in 0..<(shape[0] * heads) { m[i % heads] = max(m[i % heads], Ops.maxAbs(values.baseAddress! + i * per, cols: per)) }
            merge("\(name.dropLast(8)).probs", m)
        } else {
            merge(name, [Ops.maxAbs(values.baseAddress!, cols: values.count)])
        }
    }

    private func merge(_ key: String, _ m: [Float]) {
        lock.withLock {
            if let old = maxAbs[key] { maxAbs[key] = zip(old, m).map { max($0, $1) } } else { maxAbs[key] = m }
        }
    }

    /// The quantized model from the ranges seen so far.
    public func model(_ mode: EngineMode) -> SwinTransformer {
        model.replacing(linear: { name, op in
            let w = QuantizedWeight(weight: (op as! Linear).weight, bias: (op as! Linear).bias,
                                    quant: MinMaxCalibrator.weightQuant(op as! Linear, recipe: recipe))
            let input = MinMaxCalibrator.inputQuant(maxAbs: maxAbs["\(name).input"]?[0] ?? 0, recipe: recipe)
            return mode == .integer ? Int8Linear(weight: w, input: input) : FakeQuantLinear(weight: w, input: input)
        }, attention: { name, _ in
            let heads = model.config.numHeads[stage(name)]
            let q = MinMaxCalibrator.attentionQuant(maxAbs: { maxAbs["\(name).\($0)"] ?? [Float](repeating: 0, count: heads) }, recipe: recipe)
            return mode == .integer ? Int8Attention(quant: q) : FakeQuantAttention(quant: q)
        })
    }
}
