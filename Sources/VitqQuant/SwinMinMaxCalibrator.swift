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
    private let maxAbs = ActivationMaxima()

    public init(model: SwinTransformer, recipe: Recipe) { self.model = model; self.recipe = recipe }

    /// Runs the float model on one batch of normalised images, recording ranges.
    public func observe(_ images: Tensor) { _ = model.forward(images, observer: self) }

    public func wants(_ name: String) -> Bool { ActivationMaxima.wants(name) }

    /// The stage of a `layers.s.…` tap.
    private func stage(_ name: String) -> Int { Int(name.split(separator: ".")[1])! }

    public func observe(_ name: String, _ values: UnsafeBufferPointer<Float>, shape: [Int]) {
        let s = name.hasPrefix("layers.") ? stage(name) : 0
        maxAbs.record(name, values, shape: shape, heads: model.config.numHeads[s], dim: model.config.dim(s))
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
