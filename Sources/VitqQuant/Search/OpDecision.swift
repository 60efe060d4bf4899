/// The decision for one op: its final quantizers (and, for linear ops, the corrected bias).
public struct OpDecision: Equatable, Sendable, Codable {
    public var op: String
    /// [first, second]: weight and input of a linear op; A and B of a matmul.
    public var quantizers: [OperandQuant]
    public var bias: [Float]?
    /// ‖ô − o‖ / ‖o‖ of a linear op with its final quantizers on FP inputs (partial quantization ranks by it).
    public var relativeError: Double?
    /// The width a mixed-precision search made it at (every op is searched at each candidate
    /// width; nil in any other search).
    public var bits: Int?
    /// What the journal keys the decision by: the op, and `@bits` for a mixed-precision width.
    public var journalKey: String { op + (bits.map { "@\($0)" } ?? "") }
    public init(op: String, quantizers: [OperandQuant], bias: [Float]?, relativeError: Double? = nil, bits: Int? = nil) {
        self.op = op; self.quantizers = quantizers; self.bias = bias; self.relativeError = relativeError; self.bits = bits
    }
}
