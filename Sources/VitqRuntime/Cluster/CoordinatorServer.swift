import Foundation
import VitqDistributed
import VitqQuant
import VitqZmq

/// The coordinator's ZeroMQ shell: one thread owns the ROUTER socket, feeds ``CoordinatorState``
/// with decoded messages, decode failures and timer ticks, and carries out its directives.
/// Search threads talk to it through ``submit(_:)`` and ``decided(_:)``, which queue commands
/// and wake the thread through a pipe.
final class CoordinatorServer: @unchecked Sendable {
    private let socket: ZmqSocket
    private var state: CoordinatorState
    private var codec: MessageCodec
    private let journal: DecisionJournal
    private let wake: WakePipe
    let stats: ClusterStats
    private let log: @Sendable (String) -> Void
    private let clock: MonotonicClock
    private var routes = PeerRoutes()

    private enum Command {
        case submit(WorkUnit, (Result<Completion, Error>) -> Void)
        case decided(OpDecision)
        case release
    }
    private let lock = NSLock()
    private var commands: [Command] = []
    private var waiting: [RequestID: (Result<Completion, Error>) -> Void] = [:]
    private var finished = false
    private var failure: Error?
    private let done = DispatchSemaphore(value: 0)

    private let watchdog: (@Sendable () -> String?)?

    /// Messages queued per peer at most (`ZMQ_SNDHWM`); a peer whose queue is full is dropped.
    static let sendQueueMessages = 8192
    /// Bytes sent to a peer (copied frames; a JOB's shared model and images do not count)
    /// without a word from it, at most; a peer over it is dropped.
    static let unheardBytesLimit = 64 << 20
    /// The JOB's inline frames, copied once and shared by every peer's JOB message.
    private let sharedBlobs: [SharedFrame]
    /// The CURVE key each peer's connection authenticated with.
    private var keyOf: [PeerID: String] = [:]
    private let maxWorkersPerKey: Int?
    private var unheard: [PeerID: Int] = [:]

    /// A server for `settings` on `socket`; deadlines and ticks run on `clock`.
    init(socket: ZmqSocket, settings: CoordinatorSettings, journal: DecisionJournal, stats: ClusterStats, maxWorkersPerKey: Int? = nil,
         clock: MonotonicClock = SystemClock(), watchdog: (@Sendable () -> String?)? = nil, log: @escaping @Sendable (String) -> Void) throws {
        self.socket = socket
        self.clock = clock
        self.watchdog = watchdog
        self.maxWorkersPerKey = maxWorkersPerKey
        sharedBlobs = settings.blobs.map(SharedFrame.init)
        self.journal = journal
        self.stats = stats
        self.log = log
        // The state's JOB carries empty placeholders, replaced by the shared frames on send
        // (``send(_:to:)``), so the inline model and images are held once.
        var placeholders = settings
        placeholders.blobs = settings.blobs.map { _ in Data() }
        state = CoordinatorState(settings: placeholders, clock: clock, resumed: journal.decisions)
        codec = MessageCodec(shardCount: settings.shardCount, versions: settings.versions)
        wake = try WakePipe()
    }

    /// Starts the I/O thread.
    func start() {
        let t = Thread { [self] in loop() }
        t.name = "vitq-coordinator"
        t.stackSize = 8 << 20
        t.start()
    }

    /// Runs `unit` on every shard and returns the per-shard results (blocking the caller).
    func submit(_ unit: WorkUnit) throws -> Completion {
        let sem = DispatchSemaphore(value: 0)
        var outcome: Result<Completion, Error>!
        enqueue(.submit(unit) { outcome = $0; sem.signal() })
        sem.wait()
        return try outcome.get()
    }

    /// Submits `unit` and returns at once; `reply` gets the per-shard results (on the I/O thread:
    /// it must not block).
    func submit(_ unit: WorkUnit, reply: @escaping (Result<Completion, Error>) -> Void) {
        enqueue(.submit(unit, reply))
    }

    /// Journals a decision (asynchronously; the run finishes once all are journaled).
    func decided(_ decision: OpDecision) { enqueue(.decided(decision)) }

    /// Lets a ``CoordinatorSettings/finishesOnRelease`` run finish (asynchronously).
    func release() { enqueue(.release) }

    /// Waits until every op is journaled and every worker was told BYE, or the run failed.
    func waitUntilFinished() throws {
        done.wait()
        done.signal()
        if let e = lock.withLock({ failure }) { throw e }
    }

    /// Stops the I/O thread early (the search failed); waiting callers get an error.
    func shutdown() {
        lock.withLock {
            if failure == nil { failure = ClusterError.aborted("the coordinator is shutting down") }
            finished = true
        }
        wake.signal()
        done.wait()
        done.signal()
    }

    private func enqueue(_ c: Command) {
        let rejected: Error? = lock.withLock {
            if finished { return failure ?? ClusterError.aborted("the coordinator has stopped") }
            commands.append(c)
            return nil
        }
        if let rejected, case let .submit(_, reply) = c { reply(.failure(rejected)) }
        wake.signal()
    }

    // MARK: the I/O thread

    private func loop() {
        let tickEvery = min(0.25, state.settings.job.heartbeat / 2)
        var nextTick = clock.now
        while !lock.withLock({ finished }) {
            let wait = max(0, nextTick - clock.now)
            do {
                let ready = try socket.poll(also: wake.readEnd, timeoutMs: Int32(wait * 1000) + 1)
                if ready.fd { wake.drain(); runCommands() }
                if ready.socket { try receiveAll() }
                if clock.now >= nextTick {
                    nextTick = clock.now + tickEvery
                    carryOut(state.tick())
                    stats.writeStatus(state: state)
                    if let why = watchdog?() { stop(ClusterError.aborted(why)) }
                }
            } catch {
                stop(error)
            }
        }
        // Whoever still waits gets the failure (after a normal finish nothing is outstanding).
        let error: Error = lock.withLock { failure ?? ClusterError.aborted("the coordinator has stopped") }
        let replies = lock.withLock { () -> [(Result<Completion, Error>) -> Void] in
            var all = Array(waiting.values)
            for case let .submit(_, reply) in commands { all.append(reply) }
            commands = []
            waiting = [:]
            return all
        }
        for r in replies { r(.failure(error)) }
        stats.writeStatus(state: state, force: true)
        done.signal()
    }

    private func runCommands() {
        let batch = lock.withLock { defer { commands = [] }; return commands }
        for c in batch {
            switch c {
            case let .submit(unit, reply):
                let (id, out) = state.submit(unit)
                waiting[id] = reply
                stats.submitted(id, op: unit.op)
                carryOut(out)
            case let .decided(d):
                carryOut(state.decided(d))
            case .release:
                carryOut(state.release())
            }
        }
    }

    private func receiveAll() throws {
        while let got = try socket.receiveWithUserID(timeoutMs: 0, maxFrames: 6) {
            guard let idFrame = got.frames.first, !idFrame.isEmpty else { continue }
            let peer = routes.peer(routingID: idFrame)
            let frames = Array(got.frames.dropFirst())
            stats.received(frames.reduce(0) { $0 + $1.count }, from: peer)
            unheard[peer] = nil
            if let key = got.userID { keyOf[peer] = key }
            do {
                if got.truncated { throw ProtocolError.frameCount(got: got.frames.count, expected: "2...4") }
                let envelope = try codec.decode(frames)
                if case let .result(r) = envelope.message { stats.resultArrived(r.request, bytes: frames.reduce(0) { $0 + $1.count }, from: peer, memory: r.memory) }
                if case let .hello(h) = envelope.message {
                    if let why = tooManyForKey(peer) {
                        log("\(peer) (\(h.name)): refused: \(why)")
                        send(.error(code: .refused, message: why), to: peer, version: h.versions.max())
                        stats.dropped(peer, reason: why)
                        routes.forget(peer)
                        keyOf[peer] = nil
                        continue
                    }
                    stats.hello(peer, name: h.name, key: keyOf[peer])
                }
                carryOut(state.receive(envelope, from: peer))
            } catch let e as ProtocolError {
                carryOut(state.malformed(e, from: peer))
            }
        }
    }

    private func carryOut(_ directives: [CoordinatorDirective]) {
        for d in directives {
            switch d {
            case let .send(message, peer):
                send(message, to: peer)
            case let .sendAtVersion(message, peer, version):
                send(message, to: peer, version: version)
            case let .assign(shard, peer, attempt):
                stats.assigned(shard, to: peer)
                log("shard \(shard) → \(stats.name(peer)) (attempt \(attempt))")
            case let .reassign(shard, from, to, attempt):
                log("shard \(shard) moves from \(stats.name(from)) to \(to.map(stats.name) ?? "the next worker to join") (attempt \(attempt))")
            case let .complete(c):
                stats.completed(c.request)
                waiting.removeValue(forKey: c.request)?(.success(c))
            case let .journal(decision):
                do {
                    try journal.append(decision)
                    stats.opDone(decision.op)
                    carryOut(state.journaled(decision.journalKey))
                } catch { stop(error) }
            case let .log(line):
                log(line)
            case let .drop(peer, reason):
                if stats.hasJoined(peer) { log("dropped \(stats.name(peer)): \(reason)") }
                stats.dropped(peer, reason: reason)
                // A peer dropped for a second HELLO has joined again in the same event.
                if !state.isLive(peer) { routes.forget(peer) }
                keyOf[peer] = nil
                unheard[peer] = nil
            case .finish:
                lock.withLock { finished = true }
            case let .abort(why):
                stop(ClusterError.aborted(why))
            }
        }
    }

    /// Why `peer`, which says HELLO, is refused: its CURVE key already has the most live workers.
    private func tooManyForKey(_ peer: PeerID) -> String? {
        guard let limit = maxWorkersPerKey, let key = keyOf[peer] else { return nil }
        let live = state.liveWorkers.filter { $0 != peer && keyOf[$0] == key }.count
        return live >= limit ? "CURVE key \(key) already has \(live) live workers (at most \(limit), --max-workers-per-key); raise --max-workers-per-key to admit more workers sharing this key" : nil
    }

    /// Sends without blocking: a peer whose queue is full (``sendQueueMessages``) or that was
    /// sent ``unheardBytesLimit`` bytes without a word back is dropped, so no peer can pin memory
    /// or stall this thread. A JOB's inline frames go as the shared copies. The header carries
    /// `version`, by default the peer's (``ProtocolVersion/current`` for a peer that has not joined).
    private func send(_ message: Message, to peer: PeerID, version: UInt8? = nil) {
        guard let id = routes.routingID(peer) else { return }
        do {
            var frames = try codec.encode(message, version: version ?? state.version(of: peer) ?? ProtocolVersion.current).map(ZmqFrame.bytes)
            if case .job = message, frames.count == 2 + sharedBlobs.count {
                for (i, b) in sharedBlobs.enumerated() { frames[2 + i] = .shared(b) }
            }
            let copied = frames.reduce(0) { if case let .bytes(d) = $1 { return $0 + d.count }; return $0 }
            let queued = unheard[peer, default: 0] + copied
            if queued > Self.unheardBytesLimit {
                carryOut(state.unreachable(peer, reason: "\(queued) bytes queued for it without a word back (at most \(Self.unheardBytesLimit))"))
                return
            }
            let bytes = try socket.send(frames: [.bytes(id)] + frames, dontWait: true)
            unheard[peer] = queued
            if case let .task(t) = message { stats.taskSent(t.request, bytes: bytes) }
            stats.sent(bytes, to: peer)
        } catch let e as ZmqError where e.wouldBlock {
            carryOut(state.unreachable(peer, reason: "its send queue is full (\(Self.sendQueueMessages) messages): it does not read"))
        } catch {
            log("\(stats.name(peer)): cannot send \(message.type.name): \(error)")
        }
    }

    /// Ends the run with `error`; the loop exits and every waiting search thread gets it.
    private func stop(_ error: Error) {
        lock.withLock {
            if failure == nil { failure = error }
            finished = true
        }
    }
}
