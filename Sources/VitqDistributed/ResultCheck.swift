import VitqQuant

/// The check of one RESULT against the TASK it answers (Docs/PROTOCOL.md §6): its kind, its
/// shape against what the coordinator knows of the op (``OpShape``) and of the task (candidates,
/// groups, statistics), and its values (finite; ranges and the output error's sums of
/// magnitudes non-negative; rows in 0…2⁴⁰). A failure names the field.
public enum ResultCheck {
    /// Most rows one shard's output-error result may report, so that adding up to a million
    /// shards cannot overflow.
    public static let maxRows = 1 << 40

    /// Why `result` cannot answer `unit` (nil: it can). `shape` is the op's expected shape (nil:
    /// unknown, then only the task's own fields and `like`, another shard's accepted result, are used).
    public static func problem(_ result: WorkResult, _ unit: WorkUnit, shape: OpShape?, like: WorkResult? = nil,
                               shapes: [String: OpShape] = [:]) -> String? {
        switch (unit, result) {
        case (.ranges, let .ranges(v)):
            if let shape, v.count != shape.ranges { return "field 'count': \(v.count) ranges, op \(unit.op) has \(shape.ranges)" }
            if v.isEmpty { return "field 'count': 0 ranges" }
            if case let .ranges(w)? = like, w.count != v.count { return "field 'count': \(v.count) ranges, other shards sent \(w.count)" }
            if let i = v.firstIndex(where: { !$0.isFinite || $0 < 0 }) { return "field 'ranges': value \(i) is \(v[i]), expected finite and ≥ 0" }
            return nil
        case (let .score(task), let .scores(s)):
            if s.candidates != task.candidates.count { return "field 'candidates': \(s.candidates), the task has \(task.candidates.count)" }
            if s.groups != task.groups { return "field 'groups': \(s.groups), the task has \(task.groups)" }
            if s.stats != task.statsPerGroup { return "field 'stats': \(s.stats), the task needs \(task.statsPerGroup)" }
            if s.values.count != s.candidates * s.groups * s.stats { return "field 'values': \(s.values.count) values for the shape" }
            if let i = s.values.firstIndex(where: { !$0.isFinite }) { return "field 'scores': value \(i) is \(s.values[i]), expected finite" }
            return nil
        case (.outputError, let .outputError(e)):
            if let channels = shape?.channels, e.sums.count != channels { return "field 'channels': \(e.sums.count), op \(unit.op) has \(channels)" }
            if e.sums.isEmpty { return "field 'channels': 0 channels" }
            if case let .outputError(f)? = like, f.sums.count != e.sums.count { return "field 'channels': \(e.sums.count), other shards sent \(f.sums.count)" }
            if !(0...maxRows).contains(e.rows) { return "field 'rows': \(e.rows), expected 0...\(maxRows)" }
            if let i = e.sums.firstIndex(where: { !$0.isFinite }) { return "field 'sums': value \(i) is \(e.sums[i]), expected finite" }
            for (name, v) in [("inputAbsSum", e.inputAbsSum), ("squaredError", e.squaredError), ("squaredReference", e.squaredReference)]
            where !(v.isFinite && v >= 0) {
                return "field '\(name)': \(v), expected finite and ≥ 0"
            }
            return nil
        case (let .statistics(task), let .ranges(v)) where task.kind == .extrema:
            if let shape, v.count != 2 * shape.ranges { return "field 'count': \(v.count) extrema, op \(unit.op) has \(2 * shape.ranges)" }
            if v.isEmpty || v.count % 2 != 0 { return "field 'count': \(v.count) extrema, expected an even number above 0" }
            if case let .ranges(w)? = like, w.count != v.count { return "field 'count': \(v.count) extrema, other shards sent \(w.count)" }
            if let i = v.firstIndex(where: { !$0.isFinite || $0 < 0 }) { return "field 'ranges': value \(i) is \(v[i]), expected finite and ≥ 0" }
            return nil
        case (let .statistics(task), let .counts(c)) where task.kind == .histogram:
            if c.count != task.absolute.count * task.bins { return "field 'count': \(c.count) counts, the task has \(task.absolute.count) groups of \(task.bins) bins" }
            if let i = c.firstIndex(where: { !($0 >= 0 && $0 <= 0x1p52 && $0 == $0.rounded()) }) {
                return "field 'counts': value \(i) is \(c[i]), expected a whole number in 0...2^52"
            }
            return nil
        case (let .statistics(task), let .counts(c)) where task.isSum:
            if c.count != 1 { return "field 'count': \(c.count) values, a \(task.kind.rawValue) task has 1" }
            if !(c[0].isFinite && c[0] >= 0) { return "field 'counts': \(c[0]), expected finite and ≥ 0" }
            if task.kind == .elements && !(c[0] <= 0x1p52 && c[0] == c[0].rounded()) { return "field 'counts': \(c[0]) elements, expected a whole number" }
            return nil
        case (.probe, let .counts(c)):
            if c.count != 3 { return "field 'count': \(c.count) sums, a probe has 3" }
            if !(c[2] >= 1 && c[2] <= 0x1p40 && c[2] == c[2].rounded()) { return "field 'counts': \(c[2]) images, expected a whole number ≥ 1" }
            if !(c[1] >= 0 && c[1] <= c[2] && c[1] == c[1].rounded()) { return "field 'counts': \(c[1]) agreements for \(c[2]) images" }
            if !(c[0].isFinite && c[0] >= 0) { return "field 'counts': KL sum \(c[0]), expected finite and ≥ 0" }
            return nil
        case (let .reconstruct(task), let .reconstruction(o)):
            return reconstructionProblem(o, task, shapes: shapes)
        case (_, let r):
            return "field 'kind': a \(r.kind) result for a \(unit.kind) task"
        }
    }

    /// A reconstruction unit's outcome against its task: one stats entry for the task's unit,
    /// finite non-negative losses; nothing learned unless kept; integers only for the task's
    /// linear ops, as many as the op has weights and within its weight grid; learned input and
    /// attention quantizers only for the task's ops, of the kind and count of the searched ones.
    static func reconstructionProblem(_ o: ReconstructionOutcome, _ task: ReconstructionTask, shapes: [String: OpShape]) -> String? {
        guard o.units.count == 1, let stats = o.units.first, stats.unit == task.unit else { return "field 'unit': not the one unit \(task.unit)" }
        for (name, v) in [("lossBefore", stats.lossBefore), ("lossAfter", stats.lossAfter), ("seconds", stats.seconds)] where !(v.isFinite && v >= 0) {
            return "field '\(name)': \(v), expected finite and ≥ 0"
        }
        guard (0...1).contains(stats.binarised), stats.iterations >= 0 else { return "field 'binarised': \(stats.binarised), expected 0...1" }
        if !stats.kept && !(o.integers.isEmpty && o.inputs.isEmpty && o.attention.isEmpty) { return "field 'kept': false, yet it carries learned values" }
        let decided = Dictionary(task.decisions.map { ($0.op, $0) }) { a, _ in a }
        for (op, codes) in o.integers {
            guard let d = decided[op], d.quantizers.first?.isUniform == true, !op.hasSuffix(".matmul1"), !op.hasSuffix(".matmul2") else {
                return "field 'integers': op \(op) is not a linear op of the task"
            }
            if let n = shapes[op]?.weights, codes.count != n { return "field 'integers': op \(op): \(codes.count) integers, the op has \(n) weights" }
            let scheme = d.quantizers[0].uniform.scheme
            if let i = codes.firstIndex(where: { !(scheme.qmin...scheme.qmax).contains(Int32($0)) }) {
                return "field 'integers': op \(op): integer \(i) is \(codes[i]), outside \(scheme.qmin)...\(scheme.qmax)"
            }
        }
        func alike(_ a: OperandQuant, _ b: OperandQuant) -> Bool {
            switch (a, b) {
            case let (.uniform(x), .uniform(y)):
                return x.scheme == y.scheme && x.granularity == y.granularity && x.scales.count == y.scales.count && x.zeroPoints == y.zeroPoints
                    && x.scales.allSatisfy { $0.isFinite && $0 > 0 }
            case let (.twin(x), .twin(y)): return x.count == y.count
            case let (.perToken(x), .perToken(y)): return x == y
            default: return false
            }
        }
        for (op, q) in o.inputs {
            guard let d = decided[op], d.quantizers.count == 2, alike(q, d.quantizers[1]) else {
                return "field 'inputs': op \(op): not an op of the task, or not the kind and size of its searched input quantizer"
            }
        }
        for (block, a) in o.attention {
            guard block == task.unit + ".attn", let qk = decided[block + ".matmul1"], let pv = decided[block + ".matmul2"],
                  alike(a.q, qk.quantizers[0]), alike(a.k, qk.quantizers[1]), alike(a.v, pv.quantizers[1]) else {
                return "field 'attention': block \(block): not the task's attention, or not the kind and size of its searched quantizers"
            }
        }
        return nil
    }

    /// Whether two results are the same bytes (floats compared by bit pattern, so −0 and +0
    /// differ and equal NaNs would match).
    public static func identical(_ a: WorkResult, _ b: WorkResult) -> Bool {
        switch (a, b) {
        case let (.ranges(x), .ranges(y)): return x.map(\.bitPattern) == y.map(\.bitPattern)
        case let (.scores(x), .scores(y)):
            return x.candidates == y.candidates && x.groups == y.groups && x.stats == y.stats && x.values.map(\.bitPattern) == y.values.map(\.bitPattern)
        case let (.outputError(x), .outputError(y)):
            return x.rows == y.rows && x.sums.map(\.bitPattern) == y.sums.map(\.bitPattern)
                && [x.inputAbsSum, x.squaredError, x.squaredReference].map(\.bitPattern) == [y.inputAbsSum, y.squaredError, y.squaredReference].map(\.bitPattern)
        case let (.counts(x), .counts(y)): return x.map(\.bitPattern) == y.map(\.bitPattern)
        case (.reconstruction(var x), .reconstruction(var y)):
            // The seconds a unit took are the worker's own; everything else must agree.
            for i in x.units.indices { x.units[i].seconds = 0 }
            for i in y.units.indices { y.units[i].seconds = 0 }
            return x == y && x.units.map { [$0.lossBefore.bitPattern, $0.lossAfter.bitPattern, $0.binarised.bitPattern] }
                == y.units.map { [$0.lossBefore.bitPattern, $0.lossAfter.bitPattern, $0.binarised.bitPattern] }
        default: return false
        }
    }
}
