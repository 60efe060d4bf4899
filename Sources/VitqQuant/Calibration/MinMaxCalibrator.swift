import Foundation
import VitqModels
import VitqTensor

/// Max calibration (Wu et al. §1) of a model of any family: weights per output channel (or per
/// tensor) from max |w|; each linear op's input per tensor from the largest |x| seen over the
/// calibration images; Q, K, V and the softmax probabilities per head (or per tensor) over all
/// of a block's attention units (Swin's windows). The recipe's patch-embedding, head and
/// `keep_float` settings apply to every family.
///
/// Feed it batches with ``observe(_:)`` and call ``finish()``. Max-reductions do not depend on
/// the order or grouping of images, so the result is the same for any batch size or split.
public final class MinMaxCalibrator: ForwardObserver {
    public let model: any SearchableModel
    public let recipe: Recipe
    /// Largest |x| per tap name (per head for the "q/k/v/probs" taps).
    private let maxAbs = ActivationMaxima()

    public init(model: any SearchableModel, recipe: Recipe) {
        self.model = model; self.recipe = recipe
    }

    /// The calibration batches, kept for the partial-quantization pass.
    private var batches: [Tensor] = []

    /// Runs the float model on one batch of normalised images [B, C, H, W], recording ranges.
    public func observe(_ images: Tensor) {
        _ = model.forward(images, observer: self)
        if recipe.keepFloat > 0 { batches.append(images) }
    }

    public func wants(_ name: String) -> Bool { ActivationMaxima.wants(name) }

    /// The attention taps (`<block>.qkv`, `<block>.softmax`) are split per head with their
    /// block's geometry; the other taps are single maxima.
    public func observe(_ name: String, _ values: UnsafeBufferPointer<Float>, shape: [Int]) {
        let block = name.split(separator: ".").dropLast().joined(separator: ".")
        let geo = model.attentionGeometry(block)
        maxAbs.record(name, values, shape: shape, heads: geo?.heads ?? 1, dim: geo?.dim ?? 1)
    }

    /// The quantized network from the ranges seen so far. With the recipe's `keep_float: k`,
    /// the k linear ops with the largest output error (``PartialQuantization``) stay in float.
    public func finish() -> QuantizedNetwork {
        let (weights, inputs) = Self.linearQuantizers(model, recipe: recipe, maxAbs: maxAbs, batches: batches)
        var attention: [String: AttentionQuant] = [:]
        for block in model.attentionBlocks {
            let heads = model.attentionGeometry(block)!.heads
            attention[block] = Self.attentionQuant(maxAbs: { maxAbs["\(block).\($0)"] ?? [Float](repeating: 0, count: heads) }, recipe: recipe)
        }
        return QuantizedNetwork(float: model, weights: weights, inputs: inputs, attention: attention)
    }

    /// The weight and input quantizers of every linear op the recipe quantizes (the patch
    /// embedding and heads by its flags), less the `keep_float` ops ``PartialQuantization``
    /// ranks worst on `batches`.
    static func linearQuantizers(_ model: any SearchableModel, recipe: Recipe, maxAbs: ActivationMaxima,
                                 batches: [Tensor]) -> (weights: [String: TensorQuant], inputs: [String: OperandQuant]) {
        var weights: [String: TensorQuant] = [:], inputs: [String: OperandQuant] = [:]
        for (name, op) in model.linearOps {
            if name == "patch_embed.proj" && !recipe.quantizePatchEmbed { continue }
            if name.hasPrefix("head") && !recipe.quantizeHead { continue }
            weights[name] = weightQuant(op as! Linear, recipe: recipe)
            inputs[name] = inputQuant(maxAbs: maxAbs["\(name).input"]?[0] ?? 0, recipe: recipe)
        }
        if recipe.keepFloat > 0 {
            let ranked = PartialQuantization.rank(model: model, weights: weights, inputs: inputs, batches: batches)
            for (name, _) in ranked.prefix(recipe.keepFloat) { weights[name] = nil; inputs[name] = nil }
        }
        return (weights, inputs)
    }

    // MARK: the max rules

    /// A weight's quantizer from its max |w| per output channel (or over the tensor).
    static func weightQuant(_ lin: Linear, recipe: Recipe) -> TensorQuant {
        let ws = recipe.weightScheme
        let perRow = (0..<lin.outFeatures).map { Ops.maxAbs(lin.weight.data + $0 * lin.inFeatures, cols: lin.inFeatures) }
        let scales = recipe.weightGranularity == .perChannel ? perRow.map { ws.symmetricScale(maxAbs: $0) }
                                                              : [ws.symmetricScale(maxAbs: perRow.max() ?? 0)]
        return TensorQuant(scheme: ws, granularity: recipe.weightGranularity, scales: scales)
    }

    /// A linear op's per-tensor input quantizer from the largest |x| seen (per-token: dynamic).
    static func inputQuant(maxAbs: Float, recipe: Recipe) -> OperandQuant {
        let xs = recipe.activationScheme
        if recipe.activationGranularity == .perToken { return .perToken(xs) }
        return .uniform(TensorQuant(scheme: xs, granularity: .perTensor, scales: [xs.symmetricScale(maxAbs: maxAbs)]))
    }

    /// The attention products' quantizers from per-head maxima of `q`, `k`, `v` and `probs`.
    static func attentionQuant(maxAbs: (String) -> [Float], recipe: Recipe) -> AttentionQuant {
        func q(_ key: String, _ scheme: QuantScheme) -> TensorQuant {
            let m = maxAbs(key)
            let perHead = recipe.matmulGranularity == .perHead
            return TensorQuant(scheme: scheme, granularity: perHead ? .perHead : .perTensor,
                               scales: perHead ? m.map { scheme.symmetricScale(maxAbs: $0) } : [scheme.symmetricScale(maxAbs: m.max() ?? 0)])
        }
        let a = recipe.activationScheme
        return AttentionQuant(q: q("q", a), k: q("k", a), probs: .uniform(q("probs", recipe.probsScheme)), v: q("v", a))
    }

}
