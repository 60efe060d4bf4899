/// One shard's result of a ``WorkUnit``, or the merge of every shard's (``Reduction``).
public enum WorkResult: Equatable, Sendable {
    /// Max |x| per operand and group of an op.
    case ranges([Float])
    /// Per-candidate statistics.
    case scores(ShardScores)
    /// Bias-correction sums.
    case outputError(OutputErrorSums)

    /// The result's kind: `ranges`, `scores` or `outputError`.
    public var kind: String {
        switch self {
        case .ranges: return "ranges"
        case .scores: return "scores"
        case .outputError: return "outputError"
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

    /// The sums of an `.outputError` result (nil for another kind).
    public var outputError: OutputErrorSums? {
        guard case let .outputError(e) = self else { return nil }
        return e
    }
}
