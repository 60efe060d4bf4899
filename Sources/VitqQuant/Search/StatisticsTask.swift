/// What a `statistics` unit measures of one op's activation operands on a shard
/// (``CandidateScorer/statistics(_:)``). The operand groups are those of a `ranges` unit: the
/// input of a linear op (1 group); per head, Q then K of `<block>.matmul1` and P then V of
/// `<block>.matmul2` (2 × heads groups).
public struct StatisticsTask: Equatable, Sendable, Codable {
    public enum Kind: String, Codable, Sendable {
        /// Per group max(0, −min x) and max(0, max x): `2 × groups` values, all negated minima
        /// first. Shards merge by max, like `ranges`.
        case extrema
        /// Per group the integer counts of `bins` equal bins over `edges[2g]...edges[2g+1]`, of
        /// |x| when `absolute[g]` (values outside clamp into the end bins): `groups × bins`
        /// counts, which shards add exactly.
        case histogram
        /// Liu et al.'s sensitivity: Σ over the shard's images of the nuclear norm of the
        /// attention map of every head and window (`<block>.matmul2`: its operand P) or of a
        /// linear op's FP output (X·Wᵀ + b): 1 value, which shards add.
        case nuclear
        /// The elements of the op's activation operands over the shard's images (a linear op's
        /// input; Q and K, or P and V): 1 whole number, which shards add.
        case elements
    }
    public var op: String
    public var kind: Kind
    /// `histogram`: lower and upper edge of each group (2 × groups values); empty for `extrema`.
    public var edges: [Float]
    /// `histogram`: bins per group.
    public var bins: Int
    /// `histogram`: per group, count |x| (symmetric calibration) instead of x (affine).
    public var absolute: [Bool]

    public init(op: String, kind: Kind, edges: [Float] = [], bins: Int = 0, absolute: [Bool] = []) {
        self.op = op; self.kind = kind; self.edges = edges; self.bins = bins; self.absolute = absolute
    }

    /// An `extrema` task for `op`.
    public static func extrema(_ op: String) -> StatisticsTask { StatisticsTask(op: op, kind: .extrema) }

    /// Whether the task's result is one additive value (`nuclear`, `elements`).
    public var isSum: Bool { kind == .nuclear || kind == .elements }
}

/// What a `probe` unit measures (``CandidateScorer/probe(_:)``): the shard's images through the
/// integer engine with the ops of `decisions` quantized and every other op in float, against
/// the FP32 logits of stage 1. The result is `[Σ KL(p_fp ‖ p_q), images whose top-1 agrees,
/// images]`, which shards add.
public struct ProbeTask: Equatable, Sendable, Codable {
    /// What is probed: an op's name (that op quantized alone), or `keep:N` for a point of the
    /// partial-quantization curve.
    public var label: String
    /// The quantized ops' decisions (a matmul's only with its block's other product).
    public var decisions: [OpDecision]

    public init(label: String, decisions: [OpDecision]) { self.label = label; self.decisions = decisions }
}
