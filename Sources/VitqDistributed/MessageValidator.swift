import Foundation
import VitqQuant

/// The field checks of one decoded message (Docs/PROTOCOL.md §2 limits, §6 validation).
struct MessageValidator {
    let limits: MessageLimits
    let shardCount: Int?
    let type: MessageType

    func fail(_ field: String, _ detail: String) -> ProtocolError {
        .invalidField(type: type.name, field: field, detail: detail)
    }

    /// Frame 1 as a `T`, from a JSON object.
    func body<T: Decodable>(_: T.Type, _ data: Data) throws -> T {
        guard data.first == UInt8(ascii: "{") else { throw ProtocolError.undecodableBody(type: type.name, detail: "not a JSON object") }
        do { return try ProtocolJSON.decoder().decode(T.self, from: data) } catch {
            throw ProtocolError.undecodableBody(type: type.name, detail: String(describing: error).prefix(300).description)
        }
    }

    func text(_ s: String, field: String, max: Int? = nil) throws {
        let n = s.utf8.count, limit = max ?? limits.maxText
        guard n <= limit else { throw fail(field, "\(n) bytes, over \(limit)") }
    }

    func hello(_ h: Hello) throws {
        guard (1...16).contains(h.versions.count) else { throw fail("versions", "\(h.versions.count) versions, expected 1...16") }
        guard !h.versions.contains(0), Set(h.versions).count == h.versions.count else { throw fail("versions", "must be distinct and in 1...255") }
        try text(h.name, field: "name", max: 256)
    }

    func job(_ j: Job, frames: Int) throws {
        guard (1...limits.maxShards).contains(j.shards.count) else { throw fail("shards", "\(j.shards.count) shards, expected 1...\(limits.maxShards)") }
        guard j.imageOffset >= 0 else { throw fail("imageOffset", "\(j.imageOffset) is negative") }
        try text(j.modelSpec.family, field: "modelSpec.family", max: 64)
        try text(j.modelSpec.spec, field: "modelSpec.spec", max: 16384)
        if let sm = j.smoothingRanges {
            guard sm.count <= 4096 else { throw fail("smoothingRanges", "\(sm.count) ops, expected at most 4096") }
            for (op, v) in sm {
                try text(op, field: "smoothingRanges", max: 256)
                let k = v.count / 2
                guard (1...32768).contains(k), v.count == 2 * k, v.allSatisfy(\.isFinite), (0..<k).allSatisfy({ v[$0] <= v[k + $0] }) else {
                    throw fail("smoothingRanges", "\(op): expected k minima then k maxima (k in 1...32768), finite, each minimum at most its maximum")
                }
            }
        }
        var previous = j.imageOffset
        for (i, s) in j.shards.enumerated() {
            guard s.lower >= previous, s.lower < s.upper else { throw fail("shards", "shard \(i) [\(s.lower), \(s.upper)) is empty, overlapping or out of order") }
            previous = s.upper
        }
        guard j.heartbeat.isFinite, (0.001...60).contains(j.heartbeat) else { throw fail("heartbeat", "\(j.heartbeat) s, expected 0.001...60") }
        guard (1...100).contains(j.liveness) else { throw fail("liveness", "\(j.liveness), expected 1...100") }
        try text(j.recipe, field: "recipe", max: 1 << 20)
        var used: Set<Int> = []
        for (name, d) in [("model", j.model), ("images", j.images)] {
            guard d.sha256.utf8.count == 64, d.sha256.utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) }) else {
                throw fail(name, "sha256 must be 64 lowercase hex digits")
            }
            switch d {
            case let .inline(frame, _):
                guard (2..<frames).contains(frame), used.insert(frame).inserted else { throw fail(name, "inline frame \(frame) is missing or used twice") }
            case let .path(path, _):
                guard !path.isEmpty else { throw fail(name, "empty path") }
                try text(path, field: name)
            }
        }
        guard used.count == frames - 2 else { throw fail("frames", "\(frames - 2) binary frames, \(used.count) referenced") }
    }

    func shard(_ shard: Int, attempt: Int) throws {
        guard shard >= 0, shard < (shardCount ?? limits.maxShards) else {
            throw ProtocolError.shardOutOfRange(shard: shard, count: shardCount ?? limits.maxShards)
        }
        guard (0...limits.maxAttempt).contains(attempt) else { throw fail("attempt", "\(attempt), expected 0...\(limits.maxAttempt)") }
    }

    func unit(_ u: WorkUnit) throws {
        guard !u.op.isEmpty else { throw fail("op", "empty op name") }
        try text(u.op, field: "op", max: limits.maxName)
        switch u {
        case .ranges: break
        case let .score(t):
            let c = t.candidates
            guard (1...limits.maxCandidates).contains(c.count), c.multipliers.count <= limits.maxCandidates else {
                throw fail("candidates", "\(c.count) candidates, expected 1...\(limits.maxCandidates)")
            }
            guard c.multipliers.allSatisfy({ $0.isFinite && $0 > 0 }) else { throw fail("multipliers", "must be positive and finite") }
            guard c.shifts?.allSatisfy({ (0...20).contains($0) }) ?? true else { throw fail("shifts", "must be in 0...20") }
            guard (1...limits.maxGroups).contains(t.groups) else { throw fail("groups", "\(t.groups), expected 1...\(limits.maxGroups)") }
            guard t.current.count == 2 else { throw fail("current", "\(t.current.count) quantizers, expected 2") }
            try operands(u.op, first: t.operand == .first ? t.candidates.base : t.current[0],
                         second: t.operand == .second ? t.candidates.base : t.current[1])
            guard t.rankingWeight.isFinite, t.rankingMargin.isFinite, t.rankingWeight >= 0 else { throw fail("ranking", "weight and margin must be finite, weight ≥ 0") }
        case let .outputError(t):
            try operands(u.op, first: t.weight, second: t.input)
        case let .statistics(t):
            switch t.kind {
            case .extrema, .nuclear, .elements:
                guard t.edges.isEmpty, t.absolute.isEmpty, t.bins == 0 else { throw fail("edges", "an \(t.kind.rawValue) task has no edges, flags or bins") }
            case .histogram:
                guard (1...limits.maxHistogramBins).contains(t.bins) else { throw fail("bins", "\(t.bins), expected 1...\(limits.maxHistogramBins)") }
                let groups = t.absolute.count
                guard (1...limits.maxGroups).contains(groups), t.edges.count == 2 * groups, groups * t.bins <= limits.maxValues else {
                    throw fail("edges", "\(t.edges.count) edges for \(groups) groups of \(t.bins) bins")
                }
                for g in 0..<groups where !(t.edges[2 * g].isFinite && t.edges[2 * g + 1].isFinite && t.edges[2 * g] <= t.edges[2 * g + 1]) {
                    throw fail("edges", "group \(g): [\(t.edges[2 * g]), \(t.edges[2 * g + 1])] is not a finite range")
                }
            }
        case let .probe(t):
            guard (1...limits.maxGroups).contains(t.decisions.count) else { throw fail("decisions", "\(t.decisions.count), expected 1...\(limits.maxGroups)") }
            try decisions(t.decisions)
        case let .reconstruct(t):
            guard t.decisions.count <= limits.maxGroups else { throw fail("decisions", "\(t.decisions.count), expected at most \(limits.maxGroups)") }
            guard (0...limits.maxShards).contains(t.index) else { throw fail("index", "\(t.index), expected 0...\(limits.maxShards)") }
            try decisions(t.decisions)
        }
    }

    /// The decisions a probe or a reconstruction unit carries: op names within bounds, two
    /// quantizers each, of kinds the scorer can run.
    func decisions(_ ds: [OpDecision]) throws {
        for d in ds {
            try text(d.op, field: "op", max: limits.maxName)
            guard d.quantizers.count == 2 else { throw fail("quantizers", "op \(d.op): \(d.quantizers.count), expected 2") }
            try operands(d.op, first: d.quantizers[0], second: d.quantizers[1])
        }
    }

    /// The operand kinds the scorer can run (it would otherwise stop on a precondition): a
    /// linear op's weight and a matmul's B are uniform; only a linear op's input may be per-token.
    func operands(_ op: String, first: OperandQuant, second: OperandQuant) throws {
        if op.hasSuffix(".matmul1") || op.hasSuffix(".matmul2") {
            guard second.isUniform, !first.isPerToken else { throw fail("current", "a matmul's B must be uniform and neither operand per-token") }
        } else {
            guard first.isUniform else { throw fail("current", "a linear op's weight quantizer must be uniform") }
        }
    }

    /// A RESULT's memory report: both fields or neither, each 0 ... ``MessageLimits/maxReportedBytes``.
    func memory(_ b: Body.Result) throws -> WorkerMemory? {
        switch (b.peakRSS, b.spilled) {
        case (nil, nil): return nil
        case let (rss?, spilled?):
            for (name, v) in [("peakRSS", rss), ("spilled", spilled)] where !(0...MessageLimits.maxReportedBytes).contains(v) {
                throw fail(name, "\(v), expected 0...\(MessageLimits.maxReportedBytes)")
            }
            return WorkerMemory(peakResidentBytes: rss, bytesSpilled: spilled)
        default: throw fail(b.peakRSS == nil ? "peakRSS" : "spilled", "missing beside the other memory field")
        }
    }

    func result(_ b: Body.Result, _ frame: Data) throws -> WorkResult {
        func count(_ v: Int?, _ name: String, _ range: ClosedRange<Int>) throws -> Int {
            guard let v else { throw fail(name, "missing for a \(b.kind.rawValue) result") }
            guard range.contains(v) else { throw fail(name, "\(v), expected \(range)") }
            return v
        }
        func values(_ n: Int, width: Int) throws -> Int {
            guard n <= limits.maxValues else { throw fail("shape", "\(n) values, over \(limits.maxValues)") }
            guard frame.count == n * width else { throw ProtocolError.binaryLength(expected: n * width, got: frame.count) }
            return n
        }
        switch b.kind {
        case .ranges:
            let n = try values(count(b.count, "count", 0...limits.maxValues), width: 4)
            return .ranges(BinaryValues.floats(frame, count: n) ?? [])
        case .scores:
            let c = try count(b.candidates, "candidates", 1...limits.maxCandidates)
            let g = try count(b.groups, "groups", 1...limits.maxGroups)
            let s = try count(b.stats, "stats", 1...limits.maxStats)
            let n = try values(c * g * s, width: 8)
            return .scores(ShardScores(candidates: c, groups: g, stats: s, values: BinaryValues.doubles(frame, count: n)))
        case .counts:
            let n = try values(count(b.count, "count", 0...limits.maxValues), width: 8)
            return .counts(BinaryValues.doubles(frame, count: n) ?? [])
        case .outputError:
            let ch = try count(b.channels, "channels", 0...limits.maxValues)
            let rows = try count(b.rows, "rows", 0...Int.max)
            let v = BinaryValues.doubles(frame, count: try values(ch + 3, width: 8)) ?? []
            return .outputError(OutputErrorSums(sums: Array(v[3...]), rows: rows, inputAbsSum: v[0], squaredError: v[1], squaredReference: v[2]))
        case .reconstruction:
            guard let r = b.reconstruction else { throw fail("reconstruction", "missing for a reconstruction result") }
            try text(r.stats.unit, field: "unit", max: limits.maxName)
            var total = 0, seen: Set<String> = []
            for part in r.integers {
                try text(part.op, field: "op", max: limits.maxName)
                guard seen.insert(part.op).inserted else { throw fail("integers", "op \(part.op) twice") }
                guard (1...limits.maxValues).contains(part.count), total + part.count <= limits.maxValues * 8 else {
                    throw fail("integers", "op \(part.op): \(part.count) integers, expected 1...\(limits.maxValues) and at most \(limits.maxValues * 8) in all")
                }
                total += part.count
            }
            guard r.integers.map(\.op) == r.integers.map(\.op).sorted() else { throw fail("integers", "not in ascending op order") }
            guard frame.count == total else { throw ProtocolError.binaryLength(expected: total, got: frame.count) }
            for i in r.inputs { try text(i.op, field: "op", max: limits.maxName) }
            for a in r.attention { try text(a.block, field: "block", max: limits.maxName) }
            guard Set(r.inputs.map(\.op)).count == r.inputs.count, Set(r.attention.map(\.block)).count == r.attention.count else {
                throw fail("inputs", "an op or block twice")
            }
            let codes = BinaryValues.int8s(frame)
            var integers: [String: [Int8]] = [:], at = 0
            for part in r.integers { integers[part.op] = Array(codes[at..<at + part.count]); at += part.count }
            return .reconstruction(ReconstructionOutcome(integers: integers, inputs: Dictionary(uniqueKeysWithValues: r.inputs.map { ($0.op, $0.quantizer) }),
                                                         attention: Dictionary(uniqueKeysWithValues: r.attention.map { ($0.block, $0.learned) }),
                                                         units: [r.stats]))
        }
    }
}
