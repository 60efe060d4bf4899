import VitqModels
import VitqTensor

/// A linear op of a quantized network: left in float, or an int8 weight with its input quantizer.
public enum LinearSlot: @unchecked Sendable {
    case float(Linear)
    case quantized(QuantizedWeight, input: OperandQuant)
}

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
