/// A unit of stage-2 work: one of the things a ``SearchExecutor`` asks of every shard, run by
/// ``CandidateScorer/run(_:)`` in this process or on a worker. Encoded as a one-key object:
/// `{"ranges": {"op": …}}`, `{"score": SearchTask}`, `{"outputError": OutputErrorTask}`,
/// `{"statistics": StatisticsTask}`, `{"probe": ProbeTask}`, `{"reconstruct": ReconstructionTask}`.
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
    /// One unit of parallel-mode block reconstruction (``BlockReconstruction/reconstruct(_:model:stores:settings:)``).
    /// Unlike the others it needs every shard's stage-1 data, so one worker answers it for the
    /// whole calibration set.
    case reconstruct(ReconstructionTask)

    /// The op the unit is about.
    public var op: String {
        switch self {
        case let .ranges(op): return op
        case let .score(t): return t.op
        case let .outputError(t): return t.op
        case let .statistics(t): return t.op
        case let .probe(t): return t.label
        case let .reconstruct(t): return t.unit
        }
    }

    /// Every op the unit reads or quantizes.
    public var ops: [String] {
        switch self {
        case let .probe(t): return t.decisions.map(\.op)
        case let .reconstruct(t): return t.decisions.map(\.op)
        default: return [op]
        }
    }

    /// Whether one shard's answer covers the whole calibration set (``reconstruct(_:)``), rather
    /// than every shard answering for its own images.
    public var isWholeSet: Bool { if case .reconstruct = self { return true } else { return false } }

    /// The unit's kind as the wire names it: `ranges`, `score`, `outputError`, `statistics`, `probe`, `reconstruct`.
    public var kind: String {
        switch self {
        case .ranges: return Key.ranges.rawValue
        case .score: return Key.score.rawValue
        case .outputError: return Key.outputError.rawValue
        case .statistics: return Key.statistics.rawValue
        case .probe: return Key.probe.rawValue
        case .reconstruct: return Key.reconstruct.rawValue
        }
    }

    private enum Key: String, CodingKey { case ranges, score, outputError, statistics, probe, reconstruct, op }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        guard c.allKeys.count == 1, let key = c.allKeys.first else {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath, debugDescription: "a unit has exactly one of ranges, score, outputError, statistics, probe, reconstruct"))
        }
        switch key {
        case .ranges:
            let r = try c.nestedContainer(keyedBy: Key.self, forKey: .ranges)
            self = .ranges(op: try r.decode(String.self, forKey: .op))
        case .score: self = .score(try c.decode(SearchTask.self, forKey: .score))
        case .outputError: self = .outputError(try c.decode(OutputErrorTask.self, forKey: .outputError))
        case .statistics: self = .statistics(try c.decode(StatisticsTask.self, forKey: .statistics))
        case .probe: self = .probe(try c.decode(ProbeTask.self, forKey: .probe))
        case .reconstruct: self = .reconstruct(try c.decode(ReconstructionTask.self, forKey: .reconstruct))
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
        case let .reconstruct(t): try c.encode(t, forKey: .reconstruct)
        }
    }
}
