import CZmq

/// A libzmq context: the I/O threads shared by the sockets made from it. Sockets keep their
/// context alive; the context is terminated when the last reference goes.
public final class ZmqContext: @unchecked Sendable {
    let handle: UnsafeMutableRawPointer

    public init() throws {
        guard let h = zmq_ctx_new() else { throw ZmqError.last("zmq_ctx_new") }
        handle = h
    }

    deinit { zmq_ctx_term(handle) }

    /// Whether this libzmq was built with CURVE security.
    public static var hasCurve: Bool { zmq_has("curve") == 1 }
}
