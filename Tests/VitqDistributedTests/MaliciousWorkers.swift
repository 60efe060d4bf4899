import Foundation
import VitqDistributed
import VitqQuant

/// The ways a malicious worker lies (issue 16), each driven through the real ``CoordinatorState``.
enum Lie: CaseIterable {
    /// Ranges with no values.
    case noRanges
    /// One range for a matmul (which has 2 × heads).
    case oneMatmulRange
    /// An output error with 0 channels.
    case zeroChannels
    /// Scores for one candidate fewer than the task has.
    case fewerCandidates
    /// A NaN score.
    case nanScore
    /// An infinite range.
    case infiniteRange
    /// A negative range.
    case negativeRange
    /// A negative row count in the output error.
    case negativeRows
    /// A NaN output-error sum.
    case nanOutputError
    /// Heartbeats, never READY.
    case neverReady
    /// HELLO, then nothing at all.
    case silent
    /// Plausible but wrong numbers, of the right shape (only `--verify` catches it).
    case plausibleValues

    /// The lies the shape and value checks catch without `--verify`.
    static let refusedByChecks: [Lie] = [.noRanges, .oneMatmulRange, .zeroChannels, .fewerCandidates, .nanScore, .infiniteRange,
                                         .negativeRange, .negativeRows, .nanOutputError]

    /// `honest` as this liar sends it, or nil to send it unchanged.
    func apply(to honest: WorkResult, unit: WorkUnit) -> WorkResult? {
        switch (self, honest) {
        case (.noRanges, .ranges): return .ranges([])
        case (.oneMatmulRange, .ranges) where unit.op.hasSuffix(".matmul1"): return .ranges([1])
        case (.zeroChannels, let .outputError(e)): return .outputError(OutputErrorSums(sums: [], rows: e.rows, inputAbsSum: 0, squaredError: 0, squaredReference: 0))
        case (.fewerCandidates, let .scores(s)):
            return .scores(ShardScores(candidates: s.candidates - 1, groups: s.groups, stats: s.stats))
        case (.nanScore, var .scores(s)): s.values[0] = .nan; return .scores(s)
        case (.infiniteRange, var .ranges(v)): v[0] = .infinity; return .ranges(v)
        case (.negativeRange, var .ranges(v)): v[0] = -1; return .ranges(v)
        case (.negativeRows, var .outputError(e)): e.rows = -5; return .outputError(e)
        case (.nanOutputError, var .outputError(e)): e.sums[0] = .nan; return .outputError(e)
        case (.plausibleValues, var .scores(s)): s.values[0] = s.values[0].nextUp; return .scores(s)
        case (.plausibleValues, var .ranges(v)): v[0] *= 1.5; return .ranges(v)
        default: return nil
        }
    }
}

/// A run of the real ``CoordinatorState`` with simulated workers, honest or lying, that answer
/// at once; time moves in quarter-second ticks with heartbeats from every worker that is not silent.
struct Cluster {
    var d: Driver
    var lies: [PeerID: Lie] = [:]
    var pending: [(PeerID, Message)] = []
    var joined: [PeerID] = []
    /// A dropped liar comes back under a new peer id (as `vitq worker` reconnects), up to this many times.
    var reconnects = 0
    var incarnations = 0

    init(_ settings: CoordinatorSettings) { d = Driver(settings) }

    /// The honest answer of `shard` to `unit`.
    static func honest(_ unit: WorkUnit, shard: Int) -> WorkResult {
        switch unit {
        case let .ranges(op): return .ranges((0..<(Fx.shapes[op]?.ranges ?? 1)).map { Float(shard + 1) * 0.5 + Float($0) })
        case let .score(task): return .scores(Fx.scores(task, shard: shard))
        case .outputError:
            return .outputError(OutputErrorSums(sums: [0.1 * Double(shard), -0.2], rows: 16, inputAbsSum: 3, squaredError: 0.5, squaredReference: 2))
        case let .statistics(task) where task.kind == .extrema:
            return .ranges((0..<(2 * (Fx.shapes[task.op]?.ranges ?? 1))).map { Float(shard + 1) * 0.25 + Float($0) })
        case let .statistics(task):
            return .counts((0..<(task.absolute.count * task.bins)).map { Double(($0 + shard) % 5) })
        case .probe:
            return .counts([0.5 * Double(shard + 1), 3, 4])
        case let .reconstruct(task):
            return .reconstruction(ReconstructionOutcome(units: [UnitReconstructionStats(unit: task.unit, lossBefore: 2, lossAfter: 3, kept: false,
                                                                                          binarised: 1, iterations: 10, seconds: 0)]))
        }
    }

    /// The units the simulated search submits: every kind, a linear op and a matmul.
    static let units: [WorkUnit] = [
        .ranges(op: "blocks.0.attn.qkv"), .ranges(op: "blocks.0.attn.matmul1"), .score(Fx.searchTask(candidates: 4, groups: 2)),
        .outputError(OutputErrorTask(op: "blocks.0.mlp.fc1", weight: Fx.uniform, input: Fx.uniform)),
        .statistics(.extrema("blocks.0.attn.qkv")),
        .statistics(StatisticsTask(op: "blocks.0.attn.qkv", kind: .histogram, edges: [0, 2], bins: 8, absolute: [true])),
        .probe(ProbeTask(label: "blocks.0.mlp.fc1", decisions: [OpDecision(op: "blocks.0.mlp.fc1", quantizers: [Fx.uniform, Fx.uniform], bias: nil)])),
    ]

    /// The honest reduction of `unit` over every shard.
    func expected(_ unit: WorkUnit) -> WorkResult {
        Reduction.reduce((0..<d.state.settings.shardCount).map { Self.honest(unit, shard: $0) }, for: unit)!
    }

    mutating func join(_ peer: PeerID, lie: Lie? = nil) {
        if let lie { lies[peer] = lie }
        joined.append(peer)
        collect(d.receive(.hello(Hello(name: peer.id)), from: peer))
    }

    mutating func collect(_ out: [CoordinatorDirective]) {
        for case let .send(m, p) in out where joined.contains(p) { pending.append((p, m)) }
        for p in out.drops where lies[p] != nil && incarnations < reconnects {
            incarnations += 1
            join(PeerID("\(p.id)+"), lie: lies[p])
        }
    }

    /// Delivers every queued message; workers answer ASSIGN with READY and TASK with a result.
    mutating func deliver() {
        while !pending.isEmpty {
            let (p, m) = pending.removeFirst()
            guard d.state.liveWorkers.contains(p) else { continue }
            let lie = lies[p]
            switch m {
            case let .assign(shard, attempt) where lie != .neverReady && lie != .silent:
                collect(d.receive(.ready(shard: shard, attempt: attempt), from: p))
            case let .task(t) where lie != .silent:
                let honest = Self.honest(t.unit, shard: t.shard)
                let sent = lie?.apply(to: honest, unit: t.unit) ?? honest
                collect(d.receive(.result(WorkReply(request: t.request, shard: t.shard, attempt: t.attempt, result: sent)), from: p))
            default: break
            }
        }
    }

    /// A quarter second: heartbeats from the workers that are not silent, a tick, delivery.
    mutating func step() {
        d.clock.advance(0.25)
        for p in d.state.liveWorkers where lies[p] != .silent { collect(d.receive(.heartbeat, from: p)) }
        collect(d.tick())
        deliver()
    }

    /// Submits every unit and runs until they all complete, the run ends, or `seconds` pass.
    @discardableResult
    mutating func run(_ units: [WorkUnit] = Cluster.units, seconds: Double = 300) -> [RequestID: Completion] {
        var ids: [RequestID] = []
        for u in units {
            let (id, out) = d.submit(u)
            ids.append(id)
            collect(out)
        }
        deliver()
        var t = 0.0
        while t < seconds, d.state.phase == .running || d.state.phase == .waiting,
              !ids.allSatisfy({ id in d.log.completions.contains { $0.request == id } }) {
            step()
            t += 0.25
        }
        return Dictionary(uniqueKeysWithValues: d.log.completions.map { ($0.request, $0) })
    }

    var aborts: [String] { d.log.compactMap { if case let .abort(s) = $0 { return s }; return nil } }
}
