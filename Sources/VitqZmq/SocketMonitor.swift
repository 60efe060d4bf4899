import CZmq
import Foundation

/// Events of a socket's connections (`zmq_socket_monitor`), read without blocking.
public final class SocketMonitor: @unchecked Sendable {
    /// The events vitq reacts to.
    public enum Event: Equatable, Sendable {
        /// The CURVE handshake succeeded.
        case handshakeSucceeded
        /// The server refused our key (ZAP said no), or the handshake failed otherwise.
        case authenticationFailed
        case handshakeFailed
        case other(UInt16)
    }

    private let pair: ZmqSocket

    private nonisolated(unsafe) static var counter = 0
    private static let lock = NSLock()

    /// Starts monitoring `socket` (before it connects).
    public init(_ socket: ZmqSocket) throws {
        let n = Self.lock.withLock { Self.counter += 1; return Self.counter }
        let endpoint = "inproc://vitq-monitor-\(getpid())-\(n)"
        let events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
            | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
        try check(zmq_socket_monitor(try socket.raw, endpoint, events), "zmq_socket_monitor", endpoint)
        pair = try ZmqSocket(socket.context, .pair)
        try pair.connect(endpoint)
    }

    /// The events that happened since the last call.
    public func drain() -> [Event] {
        var out: [Event] = []
        while let got = try? pair.receive(timeoutMs: 0), let first = got.frames.first, first.count >= 2 {
            let id = UInt16(first[first.startIndex]) | UInt16(first[first.startIndex + 1]) << 8
            switch Int32(id) {
            case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: out.append(.handshakeSucceeded)
            case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: out.append(.authenticationFailed)
            case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL, ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL: out.append(.handshakeFailed)
            default: out.append(.other(id))
            }
        }
        return out
    }

    public func close() { pair.close() }
}
