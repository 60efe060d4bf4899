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

    /// libzmq's version as "major.minor.patch".
    public static var libraryVersion: String {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }

    /// Whether this libzmq was built with CURVE security.
    public static var hasCurve: Bool { zmq_has("curve") == 1 }
}
