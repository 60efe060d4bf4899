import Foundation
import VitqModels
import VitqTensor

/// Max calibration of a ``SwinTransformer`` with the same rules as ``MinMaxCalibrator``:
/// weights per output channel (or tensor), each linear op's input per tensor, Q, K, V and the
/// probabilities per head over all windows; the recipe's patch-embedding, head and `keep_float`
/// settings apply as for ViT. Every quantized linear op, the patch merging included, runs as an
/// integer GEMM, and both attention products per window and head.
public final class SwinMinMaxCalibrator: ForwardObserver {
    public let model: SwinTransformer
    public let recipe: Recipe
    private let maxAbs = ActivationMaxima()
    /// The calibration batches, kept for the partial-quantization pass.
    private var batches: [Tensor] = []

    public init(model: SwinTransformer, recipe: Recipe) { self.model = model; self.recipe = recipe }

    /// Runs the float model on one batch of normalised images, recording ranges.
    public func observe(_ images: Tensor) {
        _ = model.forward(images, observer: self)
        if recipe.keepFloat > 0 { batches.append(images) }
    }

    public func wants(_ name: String) -> Bool { ActivationMaxima.wants(name) }

    /// The stage of a `layers.s.…` tap.
    private func stage(_ name: String) -> Int { Int(name.split(separator: ".")[1])! }

    public func observe(_ name: String, _ values: UnsafeBufferPointer<Float>, shape: [Int]) {
        let s = name.hasPrefix("layers.") ? stage(name) : 0
        maxAbs.record(name, values, shape: shape, heads: model.config.numHeads[s], dim: model.config.dim(s))
    }

    /// The quantized network from the ranges seen so far.
    public func finish() -> QuantizedSwinNetwork {
        let (weights, inputs) = MinMaxCalibrator.linearQuantizers(model, recipe: recipe, maxAbs: maxAbs, batches: batches)
        var attention: [String: AttentionQuant] = [:]
        for s in 0..<model.config.stages {
            for b in 0..<model.config.depths[s] {
                let name = "layers.\(s).blocks.\(b).attn", heads = model.config.numHeads[s]
                attention[name] = MinMaxCalibrator.attentionQuant(maxAbs: { maxAbs["\(name).\($0)"] ?? [Float](repeating: 0, count: heads) },
                                                                  recipe: recipe)
            }
        }
        return QuantizedSwinNetwork(float: model, weights: weights, inputs: inputs, attention: attention)
    }
}
