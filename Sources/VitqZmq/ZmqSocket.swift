import CZmq
import Foundation

/// The socket options vitq sets (libzmq's `ZMQ_*` values).
public enum ZmqOption: Int32, Sendable {
    /// Milliseconds unsent messages are kept after close.
    case linger = 17
    /// A ROUTER fails sends to unknown routing ids (`EHOSTUNREACH`) instead of dropping them.
    case routerMandatory = 33
    /// Milliseconds a send may block before `EAGAIN`.
    case sendTimeout = 28
    /// The largest frame accepted; a peer sending more is disconnected.
    case maxMessageSize = 22
    /// Milliseconds before the first reconnect, and the cap of its exponential backoff.
    case reconnectInterval = 18, reconnectIntervalMax = 21
    /// Milliseconds a connection may take to finish its (CURVE) handshake.
    case handshakeInterval = 66
}

/// The socket types vitq uses.
public enum ZmqSocketType: Int32, Sendable {
    case pair = 0, req = 3, rep = 4, dealer = 5, router = 6
}

/// One libzmq socket, used from one thread at a time. Every call is checked and failures throw
/// a ``ZmqError``; ``close()`` (or deinit) closes it with the linger it was given.
public final class ZmqSocket: @unchecked Sendable {
    let context: ZmqContext
    private var handle: UnsafeMutableRawPointer?

    public init(_ context: ZmqContext, _ type: ZmqSocketType) throws {
        self.context = context
        guard let h = zmq_socket(context.handle, type.rawValue) else { throw ZmqError.last("zmq_socket") }
        handle = h
        try set(.linger, 0)
    }

    deinit { close() }

    /// Closes the socket; later calls fail with `ENOTSOCK`.
    public func close() {
        if let h = handle { zmq_close(h) }
        handle = nil
    }

    var raw: UnsafeMutableRawPointer {
        get throws {
            guard let h = handle else { throw ZmqError(call: "zmq_socket", subject: "closed", errno: ENOTSOCK) }
            return h
        }
    }

    // MARK: options

    /// Sets one of the options vitq uses.
    public func set(_ option: ZmqOption, _ value: Int) throws {
        if option == .maxMessageSize { try set(option.rawValue, int64: Int64(value)) } else { try set(option.rawValue, Int32(clamping: value)) }
    }

    /// Sets an integer option.
    func set(_ option: Int32, _ value: Int32) throws {
        var v = value
        try check(zmq_setsockopt(try raw, option, &v, MemoryLayout<Int32>.size), "zmq_setsockopt", "option \(option)")
    }

    /// Sets a 64-bit integer option (`ZMQ_MAXMSGSIZE`).
    func set(_ option: Int32, int64 value: Int64) throws {
        var v = value
        try check(zmq_setsockopt(try raw, option, &v, MemoryLayout<Int64>.size), "zmq_setsockopt", "option \(option)")
    }

    /// Sets a bytes option (routing id, CURVE keys as 40-character Z85 text).
    func set(_ option: Int32, bytes: [UInt8]) throws {
        _ = try bytes.withUnsafeBytes { b in
            try check(zmq_setsockopt(try raw, option, b.baseAddress, b.count), "zmq_setsockopt", "option \(option)")
        }
    }

    /// Makes this socket a CURVE server with `secretKey` (Z85).
    public func makeCurveServer(secretKey: String) throws {
        try set(ZMQ_CURVE_SERVER, 1)
        try set(ZMQ_CURVE_SECRETKEY, bytes: Array(secretKey.utf8))
    }

    /// Makes this socket a CURVE client of the server whose public key is `serverKey`.
    public func makeCurveClient(keys: CurveKeyPair, serverKey: String) throws {
        try set(ZMQ_CURVE_SERVERKEY, bytes: Array(serverKey.utf8))
        try set(ZMQ_CURVE_PUBLICKEY, bytes: Array(keys.publicKey.utf8))
        try set(ZMQ_CURVE_SECRETKEY, bytes: Array(keys.secretKey.utf8))
    }

    // MARK: endpoints

    public func bind(_ endpoint: String) throws {
        try check(zmq_bind(try raw, endpoint), "zmq_bind", endpoint)
    }

    public func connect(_ endpoint: String) throws {
        try check(zmq_connect(try raw, endpoint), "zmq_connect", endpoint)
    }

    /// The endpoint actually bound (resolves `tcp://host:*` to the chosen port).
    public var lastEndpoint: String {
        get throws {
            var buf = [CChar](repeating: 0, count: 1024)
            var size = buf.count
            try check(zmq_getsockopt(try raw, ZMQ_LAST_ENDPOINT, &buf, &size), "zmq_getsockopt", "ZMQ_LAST_ENDPOINT")
            return String(cString: buf)
        }
    }

    // MARK: messages

    /// Sends `frames` as one multipart message. Returns the bytes sent. Blocks while the
    /// peer's queue is full; a ROUTER with `ZMQ_ROUTER_MANDATORY` throws `EHOSTUNREACH`
    /// for an unknown routing id.
    @discardableResult
    public func send(_ frames: [Data], dontWait: Bool = false) throws -> Int {
        try send(frames: frames.map { .bytes($0) }, dontWait: dontWait)
    }

    /// Receives one multipart message, waiting at most `timeoutMs` (0: don't wait, -1: forever).
    /// Returns nil on timeout. At most `maxFrames` frames are kept: a message with more is
    /// drained and returned with `truncated` set, so the caller can reject it without reading it.
    public func receive(timeoutMs: Int32, maxFrames: Int = 8) throws -> (frames: [Data], truncated: Bool)? {
        try receiveWithUserID(timeoutMs: timeoutMs, maxFrames: maxFrames).map { ($0.frames, $0.truncated) }
    }

    /// Whether a message can be received within `timeoutMs`.
    public func poll(timeoutMs: Int32) throws -> Bool {
        var item = zmq_pollitem_t(socket: try raw, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        while true {
            let n = zmq_poll(&item, 1, Int(timeoutMs))
            if n >= 0 { return n > 0 }
            let e = ZmqError.last("zmq_poll")
            if !e.interrupted { throw e }
        }
    }

    /// Waits up to `timeoutMs` until this socket can receive or `fd` is readable; returns
    /// (socket readable, fd readable).
    public func poll(also fd: Int32, timeoutMs: Int32) throws -> (socket: Bool, fd: Bool) {
        var items = [zmq_pollitem_t(socket: try raw, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0),
                     zmq_pollitem_t(socket: nil, fd: fd, events: Int16(ZMQ_POLLIN), revents: 0)]
        while true {
            let n = zmq_poll(&items, 2, Int(timeoutMs))
            if n >= 0 { return (items[0].revents & Int16(ZMQ_POLLIN) != 0, items[1].revents & Int16(ZMQ_POLLIN) != 0) }
            let e = ZmqError.last("zmq_poll")
            if !e.interrupted { throw e }
        }
    }
}
