import VitqQuant

/// The coordinator's protocol core (Docs/PROTOCOL.md §4–5), without I/O. The caller feeds it
/// events — decoded messages, decode failures, timer ticks, work submissions, op decisions
/// and journal acknowledgements — and carries out the ``CoordinatorDirective``s each returns,
/// in order. Time comes from the injected ``CoordinatorClock``.
///
/// It owns the shard → worker assignment (balanced and deterministic, by join order),
/// stage-1 readiness per shard, outstanding requests (one unit on all shards, reduced in shard
/// order), heartbeat deadlines, reassignment of a dead worker's shards and the idempotent
/// acceptance of results by (request, shard, attempt).
public struct CoordinatorState {
    /// Where the run is.
    public enum Phase: Equatable, Sendable {
        /// Waiting for ``CoordinatorSettings/expectedWorkers`` workers before assigning shards.
        case waiting
        case running
        case finished
        case aborted
    }

    struct Worker {
        var peer: PeerID
        var name: String
        var version: UInt8
        var joined: Int
        var lastHeard: Double
        var lastSent: Double
    }

    struct Shard {
        var owner: PeerID?
        var attempt = 0
        var ready = false
    }

    struct Request {
        var unit: WorkUnit
        var results: [WorkResult?]
    }

    public let settings: CoordinatorSettings
    let clock: CoordinatorClock
    public internal(set) var phase: Phase = .waiting
    var workers: [PeerID: Worker] = [:]
    var shards: [Shard]
    var requests: [RequestID: Request] = [:]
    var nextRequest: RequestID = 1
    var joins = 0
    /// Ops whose decision is journaled (or was replayed from the journal).
    public internal(set) var journaledOps: Set<String>

    /// A coordinator for `settings`; `resumed` are the decisions replayed from the journal.
    public init(settings: CoordinatorSettings, clock: CoordinatorClock, resumed: [OpDecision] = []) {
        self.settings = settings; self.clock = clock
        shards = Array(repeating: Shard(), count: settings.shardCount)
        journaledOps = Set(resumed.map(\.op))
    }

    // MARK: queries

    /// Live workers in join order.
    public var liveWorkers: [PeerID] { workers.values.sorted { $0.joined < $1.joined }.map(\.peer) }
    /// The protocol version negotiated with `peer` (the shell encodes its messages with it;
    /// nil for a peer that is not a live worker, which gets ``ProtocolVersion/current``).
    public func version(of peer: PeerID) -> UInt8? { workers[peer]?.version }
    /// The worker that owns `shard`, if any.
    public func owner(of shard: Int) -> PeerID? { shards[shard].owner }
    /// How many times `shard` has moved (0 for its first assignment).
    public func attempt(of shard: Int) -> Int { shards[shard].attempt }
    /// Whether `shard`'s owner has finished stage 1 for it.
    public func isReady(_ shard: Int) -> Bool { shards[shard].ready }
    /// The shards `peer` owns, ascending.
    public func shards(of peer: PeerID) -> [Int] { shards.indices.filter { shards[$0].owner == peer } }
    /// Requests not yet complete, ascending.
    public var outstanding: [RequestID] { requests.keys.sorted() }

    // MARK: events

    /// A decoded message from `peer`.
    public mutating func receive(_ envelope: Envelope, from peer: PeerID) -> [CoordinatorDirective] {
        var out: [CoordinatorDirective] = []
        guard phase != .finished, phase != .aborted else { return [.log("\(peer): \(envelope.message.type.name) after the run ended, ignored")] }
        if case let .hello(h) = envelope.message {
            if workers[peer] != nil { fail(peer, "sent a second HELLO", into: &out) }
            join(peer, h, into: &out)
            return out
        }
        guard workers[peer] != nil else {
            out.append(.log("\(peer): \(envelope.message.type.name) from an unknown peer, dropped"))
            send(.error(code: .unknownPeer, message: "send HELLO first"), to: peer, into: &out)
            out.append(.drop(peer, reason: "unknown peer"))
            return out
        }
        workers[peer]!.lastHeard = clock.now
        guard envelope.version == workers[peer]!.version else {
            violation(peer, "version \(envelope.version) on a version \(workers[peer]!.version) link", into: &out)
            return out
        }
        switch envelope.message {
        case .hello: break
        case let .ready(shard, attempt): ready(peer, shard: shard, attempt: attempt, into: &out)
        case let .result(reply): result(peer, reply, into: &out)
        case .heartbeat: break
        case let .error(code, text): fail(peer, "sent ERROR \(code.rawValue): \(text)", into: &out)
        case let .bye(reason): fail(peer, "left: \(reason)", into: &out)
        case .job, .assign, .task: violation(peer, "sent a coordinator-only \(envelope.message.type.name)", into: &out)
        }
        return out
    }

    /// A message from `peer` at the current protocol version.
    public mutating func receive(_ message: Message, from peer: PeerID) -> [CoordinatorDirective] {
        receive(Envelope(version: workers[peer]?.version ?? ProtocolVersion.current, message: message), from: peer)
    }

    /// Frames from `peer` that did not decode: log, tell it, drop it; the run goes on.
    public mutating func malformed(_ error: ProtocolError, from peer: PeerID) -> [CoordinatorDirective] {
        var out: [CoordinatorDirective] = []
        violation(peer, error.description, into: &out)
        return out
    }

    /// The timer: declares workers silent for liveness × heartbeat dead and sends heartbeats
    /// to workers that were sent nothing for one interval. Call it at least every interval.
    public mutating func tick() -> [CoordinatorDirective] {
        var out: [CoordinatorDirective] = []
        let now = clock.now
        for peer in liveWorkers where now - workers[peer]!.lastHeard >= settings.deadAfter {
            fail(peer, "missed \(settings.job.liveness) heartbeats", into: &out)
        }
        for peer in liveWorkers where now - workers[peer]!.lastSent >= settings.job.heartbeat {
            send(.heartbeat, to: peer, into: &out)
        }
        finishIfDone(into: &out)
        return out
    }

    /// Submits `unit` for every shard; TASKs go to owners whose shard is ready, the rest when
    /// they become so. The request's ``CoordinatorDirective/complete(_:)`` comes once every shard reported.
    public mutating func submit(_ unit: WorkUnit) -> (request: RequestID, directives: [CoordinatorDirective]) {
        let id = nextRequest
        nextRequest += 1
        guard phase == .waiting || phase == .running else { return (id, [.log("request \(id) submitted after the run ended, ignored")]) }
        requests[id] = Request(unit: unit, results: Array(repeating: nil, count: shards.count))
        var out: [CoordinatorDirective] = []
        for s in shards.indices where shards[s].ready { sendTask(id, shard: s, into: &out) }
        return (id, out)
    }

    /// The search decided an op: journal it (the op counts as done once ``journaled(_:)`` is called).
    public mutating func decided(_ decision: OpDecision) -> [CoordinatorDirective] {
        journaledOps.contains(decision.op) ? [.log("\(decision.op) is already journaled, ignored")] : [.journal(decision)]
    }

    /// The journal holds `op`'s decision, fsynced.
    public mutating func journaled(_ op: String) -> [CoordinatorDirective] {
        journaledOps.insert(op)
        var out: [CoordinatorDirective] = []
        finishIfDone(into: &out)
        return out
    }

    // MARK: helpers

    mutating func send(_ message: Message, to peer: PeerID, into out: inout [CoordinatorDirective]) {
        workers[peer]?.lastSent = clock.now
        out.append(.send(message, to: peer))
    }

    mutating func finishIfDone(into out: inout [CoordinatorDirective]) {
        guard phase == .waiting || phase == .running, requests.isEmpty, settings.ops.allSatisfy(journaledOps.contains) else { return }
        for peer in liveWorkers { send(.bye(reason: "run finished"), to: peer, into: &out) }
        phase = .finished
        out.append(.finish)
    }
}
