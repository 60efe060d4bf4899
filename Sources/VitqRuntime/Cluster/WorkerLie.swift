import VitqDistributed
import VitqQuant

/// How a test worker lies (the hidden `vitq worker --lie KIND`, for the malicious-worker tests
/// of issue 16): each kind is one way an allow-listed worker could try to crash, stall or
/// mislead the coordinator. An honest worker has none.
public enum WorkerLie: String, CaseIterable, Sendable {
    /// Every ranges result has no values.
    case rangesCount = "ranges-count"
    /// Every output-error result has 0 channels.
    case zeroChannels = "zero-channels"
    /// Every score table has one candidate fewer than the task.
    case candidates
    /// The first value of every score table is NaN.
    case nan
    /// The first value of every ranges result is +Inf.
    case inf
    /// Stage 1 never finishes: heartbeats, never READY.
    case neverReady = "never-ready"
    /// Plausible numbers of the right shape: every score table's first value one ulp up and
    /// every range × 1.5 (only `--verify` catches it).
    case values
    /// Every learned-integer array of a reconstruction result one integer short.
    case integers


    /// `result` (the honest answer) as this liar sends it (unchanged when there is nothing to
    /// alter, e.g. an empty table).
    public func apply(_ result: WorkResult) -> WorkResult {
        switch (self, result) {
        case (.rangesCount, .ranges): return .ranges([])
        case (.zeroChannels, let .outputError(e)):
            return .outputError(OutputErrorSums(sums: [], rows: e.rows, inputAbsSum: e.inputAbsSum, squaredError: 0, squaredReference: 0))
        case (.candidates, let .scores(s)) where s.candidates > 1:
            return .scores(ShardScores(candidates: s.candidates - 1, groups: s.groups, stats: s.stats))
        case (.nan, var .scores(s)) where !s.values.isEmpty: s.values[0] = .nan; return .scores(s)
        case (.inf, var .ranges(v)) where !v.isEmpty: v[0] = .infinity; return .ranges(v)
        case (.values, var .scores(s)) where !s.values.isEmpty: s.values[0] = s.values[0].nextUp; return .scores(s)
        case (.values, let .ranges(v)): return .ranges(v.map { $0 * 1.5 })
        case (.integers, var .reconstruction(o)): o.integers = o.integers.mapValues { Array($0.dropLast()) }; return .reconstruction(o)
        default: return result
        }
    }
}
