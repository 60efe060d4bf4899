/// One shard's result of a ``WorkUnit``, or the merge of every shard's (``Reduction``).
public enum WorkResult: Equatable, Sendable {
    /// Max |x| per operand and group of an op.
    case ranges([Float])
    /// Per-candidate statistics.
    case scores(ShardScores)
    /// Bias-correction sums.
    case outputError(OutputErrorSums)
    /// Additive statistics: histogram counts, probe sums.
    case counts([Double])
    /// One reconstruction unit's learned integers and steps, and how it went.
    case reconstruction(ReconstructionOutcome)

    /// The result's kind: `ranges`, `scores`, `outputError`, `counts` or `reconstruction`.
    public var kind: String {
        switch self {
        case .ranges: return "ranges"
        case .scores: return "scores"
        case .outputError: return "outputError"
        case .counts: return "counts"
        case .reconstruction: return "reconstruction"
        }
    }

    /// The ranges of a `.ranges` result (nil for another kind).
    public var ranges: [Float]? {
        guard case let .ranges(v) = self else { return nil }
        return v
    }

    /// The statistics of a `.scores` result (nil for another kind).
    public var scores: ShardScores? {
        guard case let .scores(s) = self else { return nil }
        return s
    }

    /// The values of a `.counts` result (nil for another kind).
    public var counts: [Double]? {
        guard case let .counts(v) = self else { return nil }
        return v
    }

    /// The outcome of a `.reconstruction` result (nil for another kind).
    public var reconstruction: ReconstructionOutcome? {
        guard case let .reconstruction(o) = self else { return nil }
        return o
    }

    /// The sums of an `.outputError` result (nil for another kind).
    public var outputError: OutputErrorSums? {
        guard case let .outputError(e) = self else { return nil }
        return e
    }
}
