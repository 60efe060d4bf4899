import VitqModels
import VitqTensor

extension LinearSlot {
    /// The slot of float op `lin`: quantized with weight quantizer `weight` and input quantizer
    /// `input` (its bias replaced by `bias` when given, bias correction), or float when either is nil.
    static func make(_ lin: Linear, weight: TensorQuant?, input: OperandQuant?, bias: [Float]?) -> LinearSlot {
        guard let weight, let input else { return .float(lin) }
        let b = bias.map { Tensor(shape: [lin.outFeatures], values: $0) } ?? lin.bias
        return .quantized(QuantizedWeight(weight: lin.weight, bias: b, quant: weight), input: input)
    }

    /// The op that runs this slot in `mode`.
    func op(_ mode: EngineMode) -> any LinearOp {
        switch self {
        case let .float(l): return l
        case let .quantized(w, input): return mode == .integer ? Int8Linear(weight: w, input: input) : FakeQuantLinear(weight: w, input: input)
        }
    }

    /// A float op with this slot's shape and bias: the float op itself, or the dequantized weight.
    var floatStandIn: Linear {
        switch self {
        case let .float(l): return l
        case let .quantized(w, _): return Linear(weight: w.dequantized(), bias: w.bias)
        }
    }
}

extension AttentionQuant {
    /// The kernel that runs these quantizers in `mode`.
    func kernel(_ mode: EngineMode) -> any AttentionKernel {
        mode == .integer ? Int8Attention(quant: self) : FakeQuantAttention(quant: self)
    }
}

/// A Swin with its quantization decided: the float parts of `base` (norms, relative position
/// bias tables), every linear op as a ``LinearSlot`` and each block's ``AttentionQuant`` by
/// block name (`layers.s.blocks.b.attn`; absent: that attention stays in float). What a
/// quantized Swin file stores; ``makeModel(_:)`` turns it into a runnable ``SwinTransformer``.
public final class QuantizedSwinNetwork: @unchecked Sendable {
    /// The float parts; its linear ops are float stand-ins that ``makeModel(_:)`` replaces.
    public let base: SwinTransformer
    /// Linear ops by timm module name (``SwinTransformer/linearOps`` names).
    public let linear: [String: LinearSlot]
    public let attention: [String: AttentionQuant]

    public init(base: SwinTransformer, linear: [String: LinearSlot], attention: [String: AttentionQuant]) {
        self.base = base; self.linear = linear; self.attention = attention
    }

    /// Quantizes the float model `swin` as ``QuantizedNetwork/init(float:weights:inputs:attention:biases:)`` does a ViT.
    public convenience init(float swin: SwinTransformer, weights: [String: TensorQuant], inputs: [String: OperandQuant],
                            attention: [String: AttentionQuant], biases: [String: [Float]] = [:]) {
        var slots: [String: LinearSlot] = [:]
        for (name, op) in swin.linearOps {
            slots[name] = LinearSlot.make(op as! Linear, weight: weights[name], input: inputs[name], bias: biases[name])
        }
        self.init(base: swin, linear: slots, attention: attention)
    }

    public var config: SwinConfig { base.config }

    /// The runnable model in `mode`.
    public func makeModel(_ mode: EngineMode) -> SwinTransformer {
        base.replacing(linear: { name, _ in linear[name]!.op(mode) },
                       attention: { name, float in attention[name]?.kernel(mode) ?? float })
    }
}

/// A quantized network of either family: what a quantized file holds.
public enum QuantizedModel: @unchecked Sendable {
    case vit(QuantizedNetwork)
    case swin(QuantizedSwinNetwork)

    /// The runnable model in `mode`.
    public func makeModel(_ mode: EngineMode) -> any ImageClassifier {
        switch self {
        case let .vit(n): return n.makeModel(mode)
        case let .swin(n): return n.makeModel(mode)
        }
    }

    /// The ViT network, or nil.
    public var vit: QuantizedNetwork? { if case let .vit(n) = self { return n } else { return nil } }
    /// The Swin network, or nil.
    public var swin: QuantizedSwinNetwork? { if case let .swin(n) = self { return n } else { return nil } }

    /// Every linear op's slot, by name.
    public var linear: [String: LinearSlot] {
        switch self {
        case let .vit(n): return n.linear
        case let .swin(n): return n.linear
        }
    }

    /// The number of attention blocks whose products are quantized, and of attention blocks.
    public var quantizedAttention: (quantized: Int, total: Int) {
        switch self {
        case let .vit(n): return (n.attention.compactMap { $0 }.count, n.attention.count)
        case let .swin(n): return (n.attention.count, n.config.depths.reduce(0, +))
        }
    }
}
