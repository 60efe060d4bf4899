import Foundation
import VitqDistributed
import VitqModels
import VitqZmq

/// How a worker connects and behaves.
public struct WorkerOptions: Sendable {
    public var endpoint: String
    /// CURVE: this worker's key pair and the coordinator's public key (nil: no CURVE).
    public var curve: (keys: CurveKeyPair, serverKey: String)?
    public var name: String
    /// Exit after the coordinator says the run is finished (else serve the next run).
    public var once = false
    /// Give up when no coordinator answered for this long (0: never).
    public var wait = 60.0
    public var storage = StageOneStorage()
    /// Tests only: lie to the coordinator this way (hidden `--lie`).
    public var lie: WorkerLie?
    /// Why this worker cannot take a JOB (nil: it can); ``WorkerSettings/refusal``. By default
    /// a JOB whose model family the registry does not know (``unknownFamily(_:)``).
    public var refusal: @Sendable (Job) -> String? = WorkerOptions.unknownFamily

    public init(endpoint: String, name: String) { self.endpoint = endpoint; self.name = name }

    /// Why `job` cannot be taken by this build: its model family is not in ``ModelFamilies``.
    public static func unknownFamily(_ job: Job) -> String? {
        let name = job.modelSpec.family
        return ModelFamilies.named(name) == nil ? ModelFamilies.unknownFamily(name) : nil
    }

    /// The protocol settings of these options.
    var settings: WorkerSettings { WorkerSettings(endpoint: endpoint, name: name, once: once, wait: wait, refusal: refusal) }
}

/// `vitq worker`: the ZeroMQ shell of ``WorkerState``. It connects a DEALER to the
/// coordinator, feeds the state machine with decoded messages, decode failures, the compute
/// side's replies and timer ticks on the injected clock, and carries out its directives: sends,
/// work for ``WorkerCompute``, reconnects (as a new worker, after the state's backoff) and the stop.
public final class WorkerClient: @unchecked Sendable {
    let options: WorkerOptions
    let log: @Sendable (String) -> Void
    private let clock: MonotonicClock
    private let wake: WakePipe
    private let lock = NSLock()
    private var outbox: [(Message, Int)] = []
    private var fatalError: Error?
    private var compute: WorkerCompute!

    public init(options: WorkerOptions, clock: MonotonicClock = SystemClock(), log: @escaping @Sendable (String) -> Void) throws {
        self.options = options; self.clock = clock; self.log = log
        wake = try WakePipe()
        compute = WorkerCompute(storage: options.storage, lie: options.lie, send: { [unowned self] m, g in
            lock.withLock { outbox.append((m, g)) }
            wake.signal()
        }, fatal: { [unowned self] e in
            lock.withLock { if fatalError == nil { fatalError = e } }
            wake.signal()
        }, log: log)
    }

    /// Serves until the run is finished (`once`), a fatal error, or forever.
    public func run() throws {
        try Endpoint.validate(options.endpoint)
        let context = try ZmqContext()
        var state = WorkerState(settings: options.settings, clock: clock)
        while let delay = try session(context, &state) { Thread.sleep(forTimeInterval: delay) }
    }

    /// One link, from HELLO until the state reconnects (returns the delay) or stops (returns
    /// nil after a finished run, else throws).
    private func session(_ context: ZmqContext, _ state: inout WorkerState) throws -> Double? {
        let generation = compute.reset()
        lock.withLock { outbox = [] }
        let socket = try ZmqSocket(context, .dealer)
        defer { socket.close() }
        try socket.set(.maxMessageSize, MessageLimits.default.maxBlob + 64)
        try socket.set(.linger, 1000)
        var monitor: SocketMonitor?
        defer { monitor?.close() }
        if let curve = options.curve {
            try socket.makeCurveClient(keys: curve.keys, serverKey: curve.serverKey)
            monitor = try SocketMonitor(socket)
        }
        try socket.connect(options.endpoint)
        var link = Link(socket: socket, generation: generation)
        var directives = state.connect()
        while true {
            if let end = try carryOut(directives, &link) { return try outcome(end) }
            if let e = lock.withLock({ fatalError }) {
                _ = try? carryOut(replies(generation).flatMap { state.reply($0) }, &link)
                throw e
            }
            if let monitor, monitor.drain().contains(.authenticationFailed) {
                throw ClusterError.refused(endpoint: options.endpoint, detail: "CURVE authentication failed (is this worker's public key in its allow-list?)")
            }
            let ready = try socket.poll(also: wake.readEnd, timeoutMs: Int32(state.tickInterval * 1000))
            if ready.fd { wake.drain() }
            directives = replies(generation).flatMap { state.reply($0) }
            while state.isLinked, let got = try socket.receive(timeoutMs: 0, maxFrames: 5) {
                do {
                    if got.truncated { throw ProtocolError.frameCount(got: got.frames.count, expected: "2...4") }
                    directives += state.receive(try link.codec.decode(got.frames))
                } catch let e as ProtocolError {
                    directives += state.malformed(e)
                }
            }
            directives += state.tick()
        }
    }

    /// The socket and codec of one link.
    private struct Link {
        let socket: ZmqSocket
        let generation: Int
        var codec = MessageCodec()
        var version = ProtocolVersion.current
    }

    /// How a link ended.
    private enum End {
        case reconnect(after: Double)
        case stop(WorkerStop)
    }

    /// The delay before the next link, or nil after a finished run; throws a stop's error.
    private func outcome(_ end: End) throws -> Double? {
        switch end {
        case let .reconnect(delay): return delay
        case .stop(.finished): return nil
        case let .stop(.refused(detail)): throw ClusterError.refused(endpoint: options.endpoint, detail: detail)
        case let .stop(.unreachable(seconds)): throw ClusterError.unreachable(endpoint: options.endpoint, seconds: seconds)
        case let .stop(.cannotTakeJob(why)): throw ClusterError.job(why)
        }
    }

    /// Carries out `directives` in order; returns how the link ended, if it did.
    private func carryOut(_ directives: [WorkerDirective], _ link: inout Link) throws -> End? {
        for d in directives {
            switch d {
            case let .send(m): try link.socket.send(try link.codec.encode(m, version: link.version))
            case let .link(version, shards):
                link.version = version
                link.codec.versions = [version]
                link.codec.shardCount = shards
            case let .compute(.job(job, blobs)): compute.job(job, blobs: blobs, generation: link.generation)
            case let .compute(.assign(shard, attempt)): compute.assign(shard: shard, attempt: attempt, generation: link.generation)
            case let .compute(.task(t)): compute.task(t, generation: link.generation)
            case let .log(line): log(line)
            case let .reconnect(delay): return .reconnect(after: delay)
            case let .stop(why): return .stop(why)
            }
        }
        return nil
    }

    /// The compute side's queued replies of link `generation` (older ones are dropped).
    private func replies(_ generation: Int) -> [Message] {
        lock.withLock { defer { outbox = [] }; return outbox }.filter { $0.1 == generation }.map(\.0)
    }
}
