import VitqQuant

/// A unit of stage-2 work as it travels: one of the three things a ``SearchExecutor`` asks of
/// every shard. Encoded as a one-key object: `{"ranges": {"op": …}}`, `{"score": SearchTask}`,
/// `{"outputError": OutputErrorTask}`.
public enum WorkUnit: Equatable, Sendable, Codable {
    /// Max |x| per operand and group of an op (`CandidateScorer.ranges`).
    case ranges(op: String)
    /// Per-candidate statistics (`CandidateScorer.score`).
    case score(SearchTask)
    /// Bias-correction sums (`CandidateScorer.outputError`).
    case outputError(OutputErrorTask)

    /// The op the unit is about.
    public var op: String {
        switch self {
        case let .ranges(op): return op
        case let .score(t): return t.op
        case let .outputError(t): return t.op
        }
    }

    private enum Key: String, CodingKey { case ranges, score, outputError, op }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        guard c.allKeys.count == 1, let key = c.allKeys.first else {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath, debugDescription: "a unit has exactly one of ranges, score, outputError"))
        }
        switch key {
        case .ranges:
            let r = try c.nestedContainer(keyedBy: Key.self, forKey: .ranges)
            self = .ranges(op: try r.decode(String.self, forKey: .op))
        case .score: self = .score(try c.decode(SearchTask.self, forKey: .score))
        case .outputError: self = .outputError(try c.decode(OutputErrorTask.self, forKey: .outputError))
        case .op: throw DecodingError.dataCorruptedError(forKey: .op, in: c, debugDescription: "not a unit kind")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        switch self {
        case let .ranges(op):
            var r = c.nestedContainer(keyedBy: Key.self, forKey: .ranges)
            try r.encode(op, forKey: .op)
        case let .score(t): try c.encode(t, forKey: .score)
        case let .outputError(t): try c.encode(t, forKey: .outputError)
        }
    }
}

/// One shard's result of a ``WorkUnit``.
public enum WorkResult: Equatable, Sendable {
    case ranges([Float])
    case scores(ShardScores)
    case outputError(OutputErrorSums)
}

extension CandidateScorer {
    /// Runs `unit` on this scorer's shard: the one implementation behind both the in-process
    /// ``LocalExecutor`` calls and a worker's TASKs.
    public func run(_ unit: WorkUnit) -> WorkResult {
        switch unit {
        case let .ranges(op): return .ranges(ranges(op))
        case let .score(task): return .scores(score(task))
        case let .outputError(task): return .outputError(outputError(task))
        }
    }
}
