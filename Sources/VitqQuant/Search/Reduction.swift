/// The shard-order reduction of a unit's per-shard results (Docs/PROTOCOL.md §4): the one merge
/// behind ``LocalExecutor`` and the coordinator, so in process, any number of workers and any
/// arrival order give bit-identical values.
public enum Reduction {
    /// Whether `result` has the kind and shape `unit` asks for; `like` is another shard's
    /// result for the same unit, whose shape it must share (nil for the first).
    public static func fits(_ result: WorkResult, _ unit: WorkUnit, like: WorkResult?) -> Bool {
        switch (unit, result) {
        case (.ranges, let .ranges(v)):
            guard case let .ranges(w)? = like else { return like == nil }
            return v.count == w.count
        case (let .statistics(task), let .ranges(v)) where task.kind == .extrema:
            guard case let .ranges(w)? = like else { return like == nil }
            return v.count == w.count
        case (let .statistics(task), let .counts(v)) where task.kind == .histogram:
            return v.count == task.absolute.count * task.bins
        case (let .statistics(task), let .counts(v)) where task.isSum:
            return v.count == 1
        case (.probe, let .counts(v)):
            return v.count == 3
        case (let .score(task), let .scores(s)):
            return s.candidates == task.candidates.count && s.groups == task.groups && s.stats == task.statsPerGroup
                && s.values.count == s.candidates * s.groups * s.stats
        case (.outputError, let .outputError(e)):
            guard case let .outputError(f)? = like else { return like == nil }
            return e.sums.count == f.sums.count
        case (let .reconstruct(task), let .reconstruction(o)):
            return o.units.count == 1 && o.units[0].unit == task.unit
        default:
            return false
        }
    }

    /// `perShard` (in shard order, all fitting `unit`) reduced: scores and sums added from
    /// zero in shard order (counts too), ranges and extrema max-reduced; a whole-set unit's one answer is the result. Returns nil for an empty or ill-fitting list.
    public static func reduce(_ perShard: [WorkResult], for unit: WorkUnit) -> WorkResult? {
        guard let first = perShard.first, perShard.allSatisfy({ fits($0, unit, like: first) }) else { return nil }
        switch (unit, first) {
        case (let .score(task), _):
            var total = task.emptyScores()
            for case let .scores(s) in perShard { total.add(s) }
            return .scores(total)
        case (_, let .counts(c)):
            var total = [Double](repeating: 0, count: c.count)
            for case let .counts(s) in perShard { for i in total.indices { total[i] += s[i] } }
            return .counts(total)
        case (_, let .outputError(e)):
            var total = OutputErrorSums(channels: e.sums.count)
            for case let .outputError(s) in perShard { total.add(s) }
            return .outputError(total)
        case (.reconstruct, .reconstruction):
            return perShard.count == 1 ? first : nil
        case (_, var .ranges(m)):
            for case let .ranges(s) in perShard.dropFirst() { for i in m.indices { m[i] = max(m[i], s[i]) } }
            return .ranges(m)
        default:
            return nil
        }
    }
}
