import VitqModels
import VitqTensor

/// How a quantized network is executed.
public enum EngineMode: String, Sendable {
    /// Integer GEMMs for every quantized product (the deployable engine).
    case integer
    /// The same quantizers applied in float with sgemm (the reference for the engine).
    case fakeQuant = "fake-quant"
}

/// A float model of any family with its quantization decided: the float parts of `base`
/// (tokens, norms, bias tables), every linear op as a ``LinearSlot`` and each attention block's
/// ``AttentionQuant`` by block name (`blocks.i.attn`, `layers.s.blocks.b.attn`; absent: that
/// attention stays in float). What a quantized file stores; ``makeModel(_:)`` turns it into a
/// runnable model through the model's name-keyed replacement.
public final class QuantizedNetwork: @unchecked Sendable {
    /// The float parts; its linear ops may be float stand-ins that ``makeModel(_:)`` replaces.
    public let base: any SearchableModel
    /// Linear ops by timm module name (``SearchableModel/linearOps`` names).
    public let linear: [String: LinearSlot]
    /// Attention quantizers by block (``SearchableModel/attentionBlocks`` names).
    public let attention: [String: AttentionQuant]

    public init(base: any SearchableModel, linear: [String: LinearSlot], attention: [String: AttentionQuant]) {
        self.base = base; self.linear = linear; self.attention = attention
    }

    /// Quantizes the float model `model`: `weights[name]` and `inputs[name]` give each quantized
    /// op's quantizers (absent: stays float), `attention[block]` a block's attention quantizers;
    /// `biases[name]` replaces a quantized op's float bias (bias correction).
    public convenience init(float model: any SearchableModel, weights: [String: TensorQuant], inputs: [String: OperandQuant],
                            attention: [String: AttentionQuant], biases: [String: [Float]] = [:]) {
        var slots: [String: LinearSlot] = [:]
        for (name, op) in model.linearOps {
            slots[name] = LinearSlot.make(op as! Linear, weight: weights[name], input: inputs[name], bias: biases[name])
        }
        self.init(base: model, linear: slots, attention: attention)
    }

    /// The family of the model.
    public var family: any ModelFamily { base.family }

    /// The runnable model in `mode`.
    public func makeModel(_ mode: EngineMode) -> any SearchableModel {
        base.replacing(linear: { name, _ in linear[name]!.op(mode) },
                       attention: { name, float in attention[name]?.kernel(mode) ?? float })
    }

    /// The number of attention blocks whose products are quantized, and of attention blocks.
    public var quantizedAttention: (quantized: Int, total: Int) { (attention.count, base.attentionBlocks.count) }
}
