import Foundation
import VitqDistributed
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

    public init(endpoint: String, name: String) { self.endpoint = endpoint; self.name = name }
}

/// `vitq worker`: connects a DEALER to the coordinator, says HELLO, and serves JOB, ASSIGN and
/// TASK messages, with heartbeats both ways (Docs/PROTOCOL.md §4). When the coordinator falls
/// silent the worker reconnects with exponential backoff (1 s … 32 s) as a new worker.
public final class WorkerClient: @unchecked Sendable {
    let options: WorkerOptions
    let log: @Sendable (String) -> Void
    private let wake: WakePipe
    private let lock = NSLock()
    private var outbox: [(Message, Int)] = []
    private var fatalError: Error?
    private var compute: WorkerCompute!

    public init(options: WorkerOptions, log: @escaping @Sendable (String) -> Void) throws {
        self.options = options; self.log = log
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
        var backoff = 1.0
        var lastAnswer = Date()
        while true {
            switch try session(context, lastAnswer: &lastAnswer) {
            case .finished:
                if options.once { return }
                backoff = 1
                log("run finished; waiting for the next one")
                Thread.sleep(forTimeInterval: 1)
            case .lost:
                if options.wait > 0 && Date().timeIntervalSince(lastAnswer) >= options.wait {
                    throw ClusterError.unreachable(endpoint: options.endpoint, seconds: options.wait)
                }
                log(String(format: "reconnecting in %.0f s", backoff))
                Thread.sleep(forTimeInterval: backoff)
                backoff = min(backoff * 2, 32)
            }
        }
    }

    enum SessionEnd { case finished, lost }

    /// One connection: HELLO, then messages until BYE, silence or a fatal error.
    private func session(_ context: ZmqContext, lastAnswer: inout Date) throws -> SessionEnd {
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
        var codec = MessageCodec()
        var version = ProtocolVersion.current
        var heartbeat = 1.0, liveness = 3
        var joined = false
        var lastSent = Date(), lastHeard = Date()
        func send(_ m: Message) throws {
            try socket.send(try codec.encode(m, version: m.type == .hello ? ProtocolVersion.current : version))
            lastSent = Date()
        }
        try send(.hello(Hello(name: options.name)))
        while true {
            if let e = lock.withLock({ fatalError }) { _ = try? flush(socket, codec, version, generation); throw e }
            if let monitor, monitor.drain().contains(.authenticationFailed) {
                throw ClusterError.refused(endpoint: options.endpoint, detail: "CURVE authentication failed (is this worker's public key in its allow-list?)")
            }
            let ready = try socket.poll(also: wake.readEnd, timeoutMs: Int32(heartbeat * 250))
            if ready.fd { wake.drain() }
            if try flush(socket, codec, version, generation) { lastSent = Date() }
            while let got = try socket.receive(timeoutMs: 0, maxFrames: 5) {
                lastHeard = Date(); lastAnswer = lastHeard
                let envelope: Envelope
                do {
                    if got.truncated { throw ProtocolError.frameCount(got: got.frames.count, expected: "2...4") }
                    envelope = try codec.decode(got.frames)
                } catch {
                    log("malformed message from the coordinator: \(error)")
                    return .lost
                }
                switch envelope.message {
                case let .job(job, blobs):
                    version = envelope.version
                    codec.shardCount = job.shards.count
                    codec.versions = [version]
                    heartbeat = job.heartbeat; liveness = job.liveness
                    joined = true
                    log("joined \(options.endpoint) (protocol version \(version))")
                    compute.job(job, blobs: blobs, generation: generation)
                case let .assign(shard, attempt):
                    compute.assign(shard: shard, attempt: attempt, generation: generation)
                case let .task(t):
                    compute.task(t, generation: generation)
                case .heartbeat:
                    break
                case let .error(code, text):
                    switch code {
                    case .version, .refused, .integrity:
                        throw ClusterError.refused(endpoint: options.endpoint, detail: "\(code.rawValue): \(text)")
                    default:
                        log("coordinator: ERROR \(code.rawValue): \(text)")
                        return .lost
                    }
                case let .bye(reason):
                    log("coordinator: BYE (\(reason))")
                    return reason == "run finished" ? .finished : .lost
                case .hello, .ready, .result:
                    log("coordinator sent a worker-only \(envelope.message.type.name); reconnecting")
                    return .lost
                }
            }
            let now = Date()
            if joined && now.timeIntervalSince(lastHeard) >= heartbeat * Double(liveness) {
                log("the coordinator missed \(liveness) heartbeats")
                return .lost
            }
            if !joined && options.wait > 0 && now.timeIntervalSince(lastAnswer) >= options.wait {
                throw ClusterError.unreachable(endpoint: options.endpoint, seconds: options.wait)
            }
            if joined && now.timeIntervalSince(lastSent) >= heartbeat { try send(.heartbeat) }
        }
    }

    /// Sends the replies of this generation; returns whether anything was sent.
    @discardableResult
    private func flush(_ socket: ZmqSocket, _ codec: MessageCodec, _ version: UInt8, _ generation: Int) throws -> Bool {
        let pending = lock.withLock { defer { outbox = [] }; return outbox }
        var sent = false
        for (m, g) in pending where g == generation {
            try socket.send(try codec.encode(m, version: version))
            sent = true
        }
        return sent
    }
}
