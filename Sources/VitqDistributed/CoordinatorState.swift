import VitqQuant

/// The coordinator's protocol core (Docs/PROTOCOL.md §4–6), without I/O. The caller feeds it
/// events — decoded messages, decode failures, send failures, timer ticks, work submissions,
/// op decisions and journal acknowledgements — and carries out the ``CoordinatorDirective``s
/// each returns, in order. Time comes from the injected ``MonotonicClock``.
///
/// It owns the shard → worker assignment (balanced and deterministic, by join order),
/// stage-1 readiness per shard, outstanding requests (one unit on all shards, reduced in shard
/// order), heartbeat and progress deadlines, reassignment of a dropped worker's shards to
/// workers that are live, the check of every RESULT against its TASK, verification by
/// redundancy (``CoordinatorSettings/verifyFraction``) and the idempotent acceptance of
/// results by (request, shard, attempt).
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
        /// Sent anything after its HELLO (a silent peer is never given shards).
        var spoke = false
        /// Finished a stage 1 in this run.
        var proven = false
        /// Start of the current interval of outstanding work (nil: idle).
        var busySince: Double?
        /// TASKs sent and not yet answered.
        var tasksOut: Set<TaskKey> = []
    }

    struct TaskKey: Hashable { var request: RequestID; var shard: Int }

    /// One worker's hold on a shard: its assignment attempt and whether stage 1 is done.
    struct Holder: Equatable {
        var peer: PeerID
        var attempt: Int
        var ready = false
    }

    /// Who holds a shard: the owner, whose results count; with `--verify` a checker, which
    /// answers the verified units too; during a dispute a referee.
    enum Role: CaseIterable { case owner, checker, referee }

    struct Shard {
        var owner: Holder?
        var checker: Holder?
        var referee: Holder?
        /// The attempt the next assignment of this shard gets.
        var nextAttempt = 0
        /// How many times a holder of this shard was dropped.
        var moves = 0
        /// The drops that count against ``CoordinatorSettings/maxAttempts``: all but those of a
        /// worker outvoted under `--verify` (which honest workers never are, so they cannot loop).
        var charged = 0

        subscript(role: Role) -> Holder? {
            get { switch role { case .owner: return owner; case .checker: return checker; case .referee: return referee } }
            set { switch role { case .owner: owner = newValue; case .checker: checker = newValue; case .referee: referee = newValue } }
        }
        func role(of peer: PeerID) -> Role? { Role.allCases.first { self[$0]?.peer == peer } }
    }

    struct Request {
        var unit: WorkUnit
        /// The shards that answer: all of them, or for a whole-set unit
        /// (``WorkUnit/isWholeSet``) the one it was placed on.
        var targets: Set<Int>
        /// The accepted result per shard (nil for a shard that is not a target).
        var results: [WorkResult?]
        /// Answers not yet accepted, per shard and worker.
        var answers: [Int: [PeerID: WorkResult]] = [:]
        /// Shards whose unit is verified.
        var checked: Set<Int>
        /// Verified shards whose owner and checker disagreed: a referee decides.
        var disputed: Set<Int> = []
    }

    public let settings: CoordinatorSettings
    let clock: MonotonicClock
    public internal(set) var phase: Phase = .waiting
    var workers: [PeerID: Worker] = [:]
    var shards: [Shard]
    var requests: [RequestID: Request] = [:]
    var nextRequest: RequestID = 1
    /// Whole-set units submitted so far: the k-th goes to shard k mod the shard count, so they
    /// spread over the shards' owners like the shards.
    var wholeSetUnits = 0
    var joins = 0
    /// Measured progress intervals, most recent last.
    var intervals: [Kind: [Double]] = [:]
    /// Per kind, 2^(ticks in which a worker missed that kind's deadline): an honest worker
    /// slower than the limit is dropped a bounded number of times before the limit fits it.
    var backoff: [Kind: Double] = [:]
    /// Per disputed shard with no referee: since when it has waited for one (``checkDisputes(into:)``).
    var refereeWaitSince: [Int: Double] = [:]
    var warnedUnchecked = false
    /// Ops whose decision is journaled (or was replayed from the journal).
    public internal(set) var journaledOps: Set<String>
    /// Whether the driver released a ``CoordinatorSettings/finishesOnRelease`` run.
    public internal(set) var released = false

    /// A coordinator for `settings`; `resumed` are the decisions replayed from the journal.
    public init(settings: CoordinatorSettings, clock: MonotonicClock, resumed: [OpDecision] = []) {
        self.settings = settings; self.clock = clock
        shards = Array(repeating: Shard(), count: settings.shardCount)
        journaledOps = Set(resumed.map(\.journalKey))
    }

    // MARK: queries

    /// Live workers in join order.
    public var liveWorkers: [PeerID] { workers.values.sorted { $0.joined < $1.joined }.map(\.peer) }
    /// Whether `peer` is a live worker.
    public func isLive(_ peer: PeerID) -> Bool { workers[peer] != nil }
    /// The protocol version negotiated with `peer` (the shell encodes its messages with it;
    /// nil for a peer that is not a live worker, which gets ``ProtocolVersion/current``).
    public func version(of peer: PeerID) -> UInt8? { workers[peer]?.version }
    /// The worker that owns `shard`, if any.
    public func owner(of shard: Int) -> PeerID? { shards[shard].owner?.peer }
    /// The worker that checks `shard`'s verified units (`--verify`), if any.
    public func checker(of shard: Int) -> PeerID? { shards[shard].checker?.peer }
    /// The owner's assignment attempt of `shard` (the attempt its next owner gets while it has none).
    public func attempt(of shard: Int) -> Int { shards[shard].owner?.attempt ?? shards[shard].nextAttempt }
    /// `peer`'s assignment attempt of `shard`, if it holds it in any role.
    public func attempt(of shard: Int, by peer: PeerID) -> Int? { shards[shard].role(of: peer).flatMap { shards[shard][$0]?.attempt } }
    /// How many times a holder of `shard` was dropped.
    public func moves(of shard: Int) -> Int { shards[shard].moves }
    /// Whether `shard`'s owner has finished stage 1 for it.
    public func isReady(_ shard: Int) -> Bool { shards[shard].owner?.ready ?? false }
    /// The shards `peer` owns, ascending.
    public func shards(of peer: PeerID) -> [Int] { shards.indices.filter { shards[$0].owner?.peer == peer } }
    /// Requests not yet complete, ascending.
    public var outstanding: [RequestID] { requests.keys.sorted() }
    /// The shards of request `id` that are verified.
    public func verified(_ id: RequestID) -> [Int] { requests[id]?.checked.sorted() ?? [] }

    // MARK: events

    /// A decoded message from `peer`.
    public mutating func receive(_ envelope: Envelope, from peer: PeerID) -> [CoordinatorDirective] {
        var out: [CoordinatorDirective] = []
        guard phase != .finished, phase != .aborted else { return [.log("\(peer): \(envelope.message.type.name) after the run ended, ignored")] }
        if case let .hello(h) = envelope.message {
            if workers[peer] != nil { fail([peer], "sent a second HELLO", into: &out) }
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
        workers[peer]!.spoke = true
        // A worker heartbeats before its JOB arrives, at the highest version it speaks: a
        // HEARTBEAT carries nothing, so any version the codec decoded is accepted for it.
        guard envelope.version == workers[peer]!.version || envelope.message == .heartbeat else {
            violation(peer, "version \(envelope.version) on a version \(workers[peer]!.version) link", into: &out)
            return out
        }
        switch envelope.message {
        case .hello: break
        case let .ready(shard, attempt): ready(peer, shard: shard, attempt: attempt, into: &out)
        case let .result(reply): result(peer, reply, into: &out)
        case .heartbeat: break
        case let .error(code, text): fail([peer], "sent ERROR \(code.rawValue): \(text)", into: &out)
        case let .bye(_, reason): fail([peer], "left: \(reason)", into: &out)
        case .job, .assign, .task: violation(peer, "sent a coordinator-only \(envelope.message.type.name)", into: &out)
        }
        placeVacancies(into: &out)
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
        placeVacancies(into: &out)
        return out
    }

    /// The shell could not deliver to `peer` (its send queue is full, or it vanished): drop it
    /// like a dead worker.
    public mutating func unreachable(_ peer: PeerID, reason: String) -> [CoordinatorDirective] {
        var out: [CoordinatorDirective] = []
        guard workers[peer] != nil else { return [.drop(peer, reason: reason)] }
        fail([peer], reason, into: &out)
        placeVacancies(into: &out)
        return out
    }

    /// The timer: declares workers silent for liveness × heartbeat dead, and workers with
    /// outstanding work past their deadline (``Deadlines``) stalled; moves all their shards at
    /// once to workers that are still live; sends heartbeats to workers that were sent nothing
    /// for one interval. Call it at least every interval.
    public mutating func tick() -> [CoordinatorDirective] {
        var out: [CoordinatorDirective] = []
        let now = clock.now
        var silent: [PeerID] = [], stalled: [(PeerID, String)] = []
        for peer in liveWorkers {
            let w = workers[peer]!
            if now - w.lastHeard >= settings.deadAfter { silent.append(peer); continue }
            guard hasWork(peer) else { workers[peer]!.busySince = nil; continue }
            let since = w.busySince ?? now
            if workers[peer]!.busySince == nil { workers[peer]!.busySince = now }
            guard let (limit, what) = deadline(of: peer) else { continue }
            if now - since > limit {
                stalled.append((peer, String(format: "made no progress for %.1f s (the %@ limit is %.1f s)", now - since, what, limit)))
            }
        }
        // A missed deadline doubles that kind's limit (once per tick).
        for kind in Set(stalled.flatMap { waitingKinds($0.0) }) { backoff[kind] = min(backoff[kind, default: 1] * 2, 1_048_576) }
        // Silent and stalled workers are dropped together, so none is given another's shards.
        fail(silent.map { ($0, "missed \(settings.job.liveness) heartbeats") } + stalled, into: &out)
        placeVacancies(into: &out)
        for peer in liveWorkers where now - workers[peer]!.lastSent >= settings.job.heartbeat {
            send(.heartbeat, to: peer, into: &out)
        }
        finishIfDone(into: &out)
        return out
    }

    /// Submits `unit` for every shard (a whole-set unit, ``WorkUnit/isWholeSet``, for one shard,
    /// whose owner answers for every image); TASKs go to owners whose shard is ready, the rest
    /// when they become so. With `--verify`, the unit's sampled shards go to their checkers too.
    /// The request's ``CoordinatorDirective/complete(_:)`` comes once every target's result is accepted.
    public mutating func submit(_ unit: WorkUnit) -> (request: RequestID, directives: [CoordinatorDirective]) {
        let id = nextRequest
        nextRequest += 1
        guard phase == .waiting || phase == .running else { return (id, [.log("request \(id) submitted after the run ended, ignored")]) }
        var targets = Set(shards.indices)
        if unit.isWholeSet {
            targets = [wholeSetUnits % shards.count]
            wholeSetUnits += 1
        }
        let checked = targets.filter { Self.sampled(seed: settings.verifySeed, request: id, shard: $0, fraction: settings.verifyFraction) }
        requests[id] = Request(unit: unit, targets: targets, results: Array(repeating: nil, count: shards.count), checked: checked)
        var out: [CoordinatorDirective] = []
        for s in targets.sorted() { dispatch(id, shard: s, into: &out) }
        return (id, out)
    }

    /// The search decided an op: journal it (the op counts as done once ``journaled(_:)`` is called).
    public mutating func decided(_ decision: OpDecision) -> [CoordinatorDirective] {
        journaledOps.contains(decision.journalKey) ? [.log("\(decision.journalKey) is already journaled, ignored")] : [.journal(decision)]
    }

    /// The journal holds the decision keyed `key` (``OpDecision/journalKey``), fsynced.
    public mutating func journaled(_ key: String) -> [CoordinatorDirective] {
        journaledOps.insert(key)
        var out: [CoordinatorDirective] = []
        finishIfDone(into: &out)
        return out
    }

    /// The driver has no more units (``CoordinatorSettings/finishesOnRelease``): finish once
    /// the outstanding requests are answered.
    public mutating func release() -> [CoordinatorDirective] {
        released = true
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
        guard phase == .waiting || phase == .running, requests.isEmpty,
              settings.finishesOnRelease ? released : settings.ops.allSatisfy(journaledOps.contains) else { return }
        for peer in liveWorkers { send(.bye(.runFinished, reason: "run finished"), to: peer, into: &out) }
        phase = .finished
        out.append(.finish)
    }

    /// Whether (request, shard) is verified: a SplitMix64 hash of the seed, the request and
    /// the shard, below `fraction`.
    public static func sampled(seed: UInt64, request: RequestID, shard: Int, fraction: Double) -> Bool {
        guard fraction > 0 else { return false }
        guard fraction < 1 else { return true }
        var z = seed &+ request &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(truncatingIfNeeded: shard) &* 0xD1B5_4A32_D192_ED03
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / Double(1 << 53) < fraction
    }
}
