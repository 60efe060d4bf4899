import Foundation

/// The worker's protocol core (Docs/PROTOCOL.md §3–4), without I/O. The shell opens a link
/// and calls ``connect()``, then feeds it decoded messages, decode failures, the compute side's
/// replies and timer ticks, and carries out the ``WorkerDirective``s each returns, in order.
/// Time comes from the injected ``MonotonicClock``.
///
/// It owns the link's version (chosen by the JOB), heartbeats both ways (Paranoid Pirate: a
/// coordinator silent for liveness × heartbeat is lost), the policy on BYE and ERROR, the
/// reconnect backoff (``WorkerSettings/firstBackoff`` doubling up to
/// ``WorkerSettings/maxBackoff``, reset by a finished run) and ``WorkerSettings/wait``, the
/// time without any answer after which the worker gives up.
public struct WorkerState {
    /// Where the worker is.
    public enum Phase: Equatable, Sendable {
        /// No link: before ``connect()``, or after a reconnect directive.
        case idle
        /// HELLO sent, no JOB yet.
        case hello
        /// The JOB arrived: the link is up.
        case joined
        /// A stop directive was given; nothing more happens.
        case stopped
    }

    public let settings: WorkerSettings
    let clock: MonotonicClock
    public private(set) var phase: Phase = .idle
    /// The link's protocol version: ``ProtocolVersion/current`` until a JOB chooses one.
    public private(set) var version = ProtocolVersion.current
    /// The heartbeat interval in seconds: 1 until a JOB sets it.
    public private(set) var heartbeat = 1.0
    /// Missed heartbeats before the coordinator is lost: 3 until a JOB sets it.
    public private(set) var liveness = 3
    /// The delay of the next reconnect.
    public private(set) var backoff: Double
    var lastSent: Double
    var lastHeard: Double
    /// When any coordinator last sent anything, over all links (for ``WorkerSettings/wait``).
    var lastAnswer: Double

    /// A worker for `settings`; the wait for a first answer starts now.
    public init(settings: WorkerSettings, clock: MonotonicClock) {
        self.settings = settings; self.clock = clock
        backoff = settings.firstBackoff
        let now = clock.now
        lastSent = now; lastHeard = now; lastAnswer = now
    }

    /// Whether a link is open (HELLO sent, the JOB possibly taken): messages count.
    public var isLinked: Bool { phase == .hello || phase == .joined }

    /// How long the shell may wait for a message before the next ``tick()``: a quarter heartbeat.
    public var tickInterval: Double { heartbeat / 4 }

    // MARK: events

    /// A new link is open: say HELLO (at ``ProtocolVersion/current``, listing every supported version).
    public mutating func connect() -> [WorkerDirective] {
        guard phase != .stopped else { return [] }
        phase = .hello
        version = ProtocolVersion.current
        heartbeat = 1; liveness = 3
        lastHeard = clock.now
        var out: [WorkerDirective] = []
        send(.hello(Hello(name: settings.name)), into: &out)
        return out
    }

    /// A decoded message from the coordinator.
    public mutating func receive(_ envelope: Envelope) -> [WorkerDirective] {
        guard isLinked else { return [] }
        heard()
        var out: [WorkerDirective] = []
        switch envelope.message {
        case let .job(job, blobs): take(job, blobs: blobs, version: envelope.version, into: &out)
        case let .assign(shard, attempt): out.append(.compute(.assign(shard: shard, attempt: attempt)))
        case let .task(t): out.append(.compute(.task(t)))
        case .heartbeat: break
        case let .error(code, text):
            switch code {
            case .version, .refused, .integrity: stop(.refused(detail: "\(code.rawValue): \(text)"), into: &out)
            case .malformed, .unknownPeer, .failed: lose("coordinator: ERROR \(code.rawValue): \(text)", into: &out)
            }
        case let .bye(kind, reason):
            out.append(.log("coordinator: BYE (\(reason))"))
            switch kind {
            case .runFinished: finished(into: &out)
            case .leaving: lose(nil, into: &out)
            }
        case .hello, .ready, .result:
            lose("coordinator sent a worker-only \(envelope.message.type.name); reconnecting", into: &out)
        }
        return out
    }

    /// Frames from the coordinator that did not decode: the link is lost.
    public mutating func malformed(_ error: ProtocolError) -> [WorkerDirective] {
        guard isLinked else { return [] }
        heard()
        var out: [WorkerDirective] = []
        lose("malformed message from the coordinator: \(error)", into: &out)
        return out
    }

    /// A reply of the compute side (READY, RESULT or ERROR) for the current link.
    public mutating func reply(_ message: Message) -> [WorkerDirective] {
        guard phase == .joined else { return [] }
        var out: [WorkerDirective] = []
        send(message, into: &out)
        return out
    }

    /// The timer: a coordinator silent for liveness × heartbeat is lost; before a JOB, a
    /// worker that no coordinator answered for ``WorkerSettings/wait`` stops; a link sent
    /// nothing for one interval gets a HEARTBEAT, before the JOB too (a large JOB can take
    /// longer than the coordinator's liveness window to arrive, and the worker must not look
    /// dead meanwhile). Call it at least every ``tickInterval``.
    public mutating func tick() -> [WorkerDirective] {
        var out: [WorkerDirective] = []
        let now = clock.now
        switch phase {
        case .joined:
            if now - lastHeard >= heartbeat * Double(liveness) {
                lose("the coordinator missed \(liveness) heartbeats", into: &out)
            } else if now - lastSent >= heartbeat {
                send(.heartbeat, into: &out)
            }
        case .hello:
            if waitIsOver { stop(.unreachable(seconds: settings.wait), into: &out) }
            else if now - lastSent >= heartbeat { send(.heartbeat, into: &out) }
        case .idle, .stopped:
            break
        }
        return out
    }

    // MARK: helpers

    var waitIsOver: Bool { settings.wait > 0 && clock.now - lastAnswer >= settings.wait }

    mutating func heard() {
        lastHeard = clock.now
        lastAnswer = lastHeard
    }

    mutating func send(_ message: Message, into out: inout [WorkerDirective]) {
        lastSent = clock.now
        out.append(.send(message))
    }

    /// The JOB: it fixes the link's version and heartbeats, unless this worker cannot take it.
    mutating func take(_ job: Job, blobs: [Data], version v: UInt8, into out: inout [WorkerDirective]) {
        version = v
        heartbeat = job.heartbeat; liveness = job.liveness
        phase = .joined
        out.append(.link(version: v, shardCount: job.shards.count))
        if let why = settings.refusal(job) {
            send(.error(code: .failed, message: why), into: &out)
            stop(.cannotTakeJob(why), into: &out)
            return
        }
        out.append(.log("joined \(settings.endpoint) (protocol version \(v))"))
        out.append(.compute(.job(job, blobs: blobs)))
    }

    /// The link is lost (`why` logged): reconnect after the backoff, which doubles, or stop when
    /// no coordinator answered for ``WorkerSettings/wait``.
    mutating func lose(_ why: String?, into out: inout [WorkerDirective]) {
        if let why { out.append(.log(why)) }
        guard !waitIsOver else { stop(.unreachable(seconds: settings.wait), into: &out); return }
        phase = .idle
        out.append(.log(String(format: "reconnecting in %.0f s", backoff)))
        out.append(.reconnect(after: backoff))
        backoff = min(backoff * 2, settings.maxBackoff)
    }

    /// The run is finished: stop (`--once`) or wait for the next run with a fresh backoff.
    mutating func finished(into out: inout [WorkerDirective]) {
        guard !settings.once else { stop(.finished, into: &out); return }
        phase = .idle
        backoff = settings.firstBackoff
        out.append(.log("run finished; waiting for the next one"))
        out.append(.reconnect(after: settings.nextRunPause))
    }

    mutating func stop(_ why: WorkerStop, into out: inout [WorkerDirective]) {
        phase = .stopped
        out.append(.stop(why))
    }
}
