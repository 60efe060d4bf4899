/// The quantizer of an activation operand: a uniform grid, PTQ4ViT's twin uniform quantizer
/// with one ``TwinQuant`` per group (one per tensor, or one per head for softmax
/// probabilities), or a dynamic per-token grid (linear-op inputs). Weights are always uniform.
public enum OperandQuant: Equatable, Sendable, Codable {
    case uniform(TensorQuant)
    case twin([TwinQuant])
    /// Symmetric, one scale per row (token) computed when the row is quantized: Δ_r = max_r|x| / qmax
    /// (``PerTokenQuant``). Nothing is calibrated; the GEMM's epilogue multiplies row r by Δ_r.
    case perToken(QuantScheme)

    /// The uniform quantizer (weights, and activations that are not twin).
    public var uniform: TensorQuant {
        guard case let .uniform(q) = self else { preconditionFailure("a twin quantizer where a uniform one is required") }
        return q
    }

    /// Whether this is a uniform grid (the only kind a weight or a matmul's B can have).
    public var isUniform: Bool { if case .uniform = self { return true } else { return false } }

    /// Whether this is a dynamic per-token grid (only a linear op's input can have it).
    public var isPerToken: Bool { if case .perToken = self { return true } else { return false } }

    /// The number of scales (or twin quantizers).
    public var count: Int {
        switch self {
        case let .uniform(q): return q.scales.count
        case let .twin(t): return t.count
        case .perToken: return 1
        }
    }

    /// The step of one integer unit of scale `index`: Δ, or Δ1 of a twin quantizer (the integers
    /// a twin operand contributes to a GEMM are in units of Δ1); 1 for per-token, whose steps
    /// are applied row by row after the GEMM.
    public func step(_ index: Int) -> Float {
        switch self {
        case let .uniform(q): return q.scales[index]
        case let .twin(t): return t[index].delta1
        case .perToken: return 1
        }
    }

    /// The index for head `head`: per-head quantizers have one per head, others one in all.
    public func index(head: Int) -> Int { count > 1 ? head : 0 }
}

extension TwinQuant: Codable {
    enum CodingKeys: String, CodingKey { case kind, bits, delta1, shift }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let bits = try c.decode(Int.self, forKey: .bits), shift = try c.decode(Int.self, forKey: .shift)
        let delta1 = try c.decode(Float.self, forKey: .delta1)
        guard (2...8).contains(bits), (0...20).contains(shift), delta1 > 0, delta1.isFinite else {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath, debugDescription: "twin quantizer needs bits 2...8, shift 0...20 and a positive finite delta1"))
        }
        self.init(kind: try c.decode(TwinKind.self, forKey: .kind), bits: bits, delta1: delta1, shift: shift)
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind); try c.encode(bits, forKey: .bits)
        try c.encode(delta1, forKey: .delta1); try c.encode(shift, forKey: .shift)
    }
}
