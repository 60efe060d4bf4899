/// A unit of stage-2 work: one of the things a ``SearchExecutor`` asks of every shard, run by
/// ``CandidateScorer/run(_:)`` in this process or on a worker. Encoded as a one-key object:
/// `{"ranges": {"op": …}}`, `{"score": SearchTask}`, `{"outputError": OutputErrorTask}`,
/// `{"statistics": StatisticsTask}`, `{"probe": ProbeTask}`.
public enum WorkUnit: Equatable, Sendable, Codable {
    /// Max |x| per operand and group of an op (`CandidateScorer.ranges`).
    case ranges(op: String)
    /// Per-candidate statistics (`CandidateScorer.score`).
    case score(SearchTask)
    /// Bias-correction sums (`CandidateScorer.outputError`).
    case outputError(OutputErrorTask)
    /// Activation extrema or histograms (`CandidateScorer.statistics`).
    case statistics(StatisticsTask)
    /// A sensitivity probe (`CandidateScorer.probe`).
    case probe(ProbeTask)

    /// The op the unit is about.
    public var op: String {
        switch self {
        case let .ranges(op): return op
        case let .score(t): return t.op
        case let .outputError(t): return t.op
        case let .statistics(t): return t.op
        case let .probe(t): return t.label
        }
    }

    /// Every op the unit reads or quantizes.
    public var ops: [String] {
        guard case let .probe(t) = self else { return [op] }
        return t.decisions.map(\.op)
    }

    /// The unit's kind as the wire names it: `ranges`, `score` or `outputError`.
    public var kind: String {
        switch self {
        case .ranges: return Key.ranges.rawValue
        case .score: return Key.score.rawValue
        case .outputError: return Key.outputError.rawValue
        case .statistics: return Key.statistics.rawValue
        case .probe: return Key.probe.rawValue
        }
    }

    private enum Key: String, CodingKey { case ranges, score, outputError, statistics, probe, op }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        guard c.allKeys.count == 1, let key = c.allKeys.first else {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath, debugDescription: "a unit has exactly one of ranges, score, outputError, statistics, probe"))
        }
        switch key {
        case .ranges:
            let r = try c.nestedContainer(keyedBy: Key.self, forKey: .ranges)
            self = .ranges(op: try r.decode(String.self, forKey: .op))
        case .score: self = .score(try c.decode(SearchTask.self, forKey: .score))
        case .outputError: self = .outputError(try c.decode(OutputErrorTask.self, forKey: .outputError))
        case .statistics: self = .statistics(try c.decode(StatisticsTask.self, forKey: .statistics))
        case .probe: self = .probe(try c.decode(ProbeTask.self, forKey: .probe))
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
        case let .statistics(t): try c.encode(t, forKey: .statistics)
        case let .probe(t): try c.encode(t, forKey: .probe)
        }
    }
}
