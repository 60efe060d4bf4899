import Foundation
import VitqDistributed
import VitqQuant

/// Small messages, settings and a driver for the socket-free coordinator tests.
enum Fx {
    static let sha = String(repeating: "ab", count: 32)

    static func job(shards n: Int) -> Job {
        Job(model: .path(path: "/models/vit.safetensors", sha256: sha), modelSpec: JobModelSpec(family: "vit", spec: "{}"), images: .path(path: "/data/cal.npy", sha256: sha),
            recipe: "{\"method\":\"search\"}", shards: (0..<n).map { ShardRange($0 * 8..<($0 + 1) * 8) })
    }

    static func settings(shards: Int = 4, workers: Int = 2, ops: [String] = ["blocks.0.attn.qkv"], verify: Double = 0) -> CoordinatorSettings {
        CoordinatorSettings(job: job(shards: shards), expectedWorkers: workers, ops: ops, shapes: shapes, verifyFraction: verify, verifySeed: 1)
    }

    /// The result shapes of the ops the tests use: linear ops of 2 output channels, and one
    /// attention block of 3 heads (so 6 ranges for its matmuls).
    static let shapes: [String: OpShape] = {
        var s: [String: OpShape] = [:]
        for op in ["x", "y", "a", "b", "h", "head", "blocks.0.attn.qkv", "blocks.0.mlp.fc1"] { s[op] = OpShape(ranges: 1, channels: 2) }
        for op in ["blocks.0.attn.matmul1", "blocks.0.attn.matmul2"] { s[op] = OpShape(ranges: 6, channels: nil) }
        return s
    }()

    static let uniform = OperandQuant.uniform(TensorQuant(scheme: QuantScheme(bits: 8, signed: true), granularity: .perTensor, scales: [0.02]))

    static func searchTask(candidates: Int = 3, groups: Int = 2) -> SearchTask {
        SearchTask(op: "blocks.0.mlp.fc1", operand: .first,
                   candidates: CandidateSet(base: uniform, multipliers: CandidateSet.linear(alpha: 0.5, beta: 1.2, count: candidates)),
                   current: [uniform, uniform], groups: groups, metric: .mse)
    }

    /// Shard `shard`'s scores for `task`: values that make the order of additions matter.
    static func scores(_ task: SearchTask, shard: Int) -> ShardScores {
        var s = task.emptyScores()
        for i in s.values.indices { s.values[i] = 0.1 * Double(i + 1) / Double(shard + 3) + (shard % 2 == 0 ? 1e16 : -1e16) / Double(shard + 1) }
        return s
    }

    static let peers = (0..<6).map { PeerID("w\($0)") }
}

/// Drives a ``CoordinatorState`` like the shell would, keeping every directive.
struct Driver {
    var state: CoordinatorState
    let clock = ManualClock()
    var log: [CoordinatorDirective] = []

    init(_ settings: CoordinatorSettings = Fx.settings()) { state = CoordinatorState(settings: settings, clock: clock) }

    @discardableResult
    mutating func receive(_ m: Message, from p: PeerID) -> [CoordinatorDirective] { keep(state.receive(m, from: p)) }

    @discardableResult
    mutating func tick(after seconds: Double = 0) -> [CoordinatorDirective] { clock.advance(seconds); return keep(state.tick()) }

    @discardableResult
    mutating func submit(_ unit: WorkUnit) -> (RequestID, [CoordinatorDirective]) {
        let (id, d) = state.submit(unit)
        return (id, keep(d))
    }

    @discardableResult
    mutating func keep(_ d: [CoordinatorDirective]) -> [CoordinatorDirective] { log += d; return d }

    /// HELLO from each of `peers`.
    mutating func join(_ peers: [PeerID]) { for p in peers { receive(.hello(Hello(name: p.id)), from: p) } }

    /// READY from every shard's owner at its attempt.
    mutating func readyAll() {
        for s in 0..<state.settings.shardCount { if let o = state.owner(of: s) { receive(.ready(shard: s, attempt: state.attempt(of: s)), from: o) } }
    }

    /// A heartbeat from every live worker.
    mutating func beat() { for p in state.liveWorkers { receive(.heartbeat, from: p) } }
}

extension Array where Element == CoordinatorDirective {
    /// The TASKs sent, with their recipients.
    var tasks: [(WorkTask, PeerID)] { compactMap { if case let .send(.task(t), p) = $0 { return (t, p) }; return nil } }
    var completions: [Completion] { compactMap { if case let .complete(c) = $0 { return c }; return nil } }
    var drops: [PeerID] { compactMap { if case let .drop(p, _) = $0 { return p }; return nil } }
    var logs: [String] { compactMap { if case let .log(s) = $0 { return s }; return nil } }
    var finishes: Bool { contains(.finish) }
    /// The messages sent to `p`, at its version or at a given one.
    func sent(to p: PeerID) -> [Message] {
        compactMap {
            switch $0 {
            case let .send(m, q) where q == p, let .sendAtVersion(m, q, _) where q == p: return m
            default: return nil
            }
        }
    }
}
