import CZmq

/// A failed libzmq call: which call, on what, and the library's errno and message.
public struct ZmqError: Error, Equatable, CustomStringConvertible {
    /// The C function that failed, e.g. `zmq_bind`.
    public var call: String
    /// What it was called on (an endpoint, an option name), or empty.
    public var subject: String
    public var errno: Int32

    public init(call: String, subject: String = "", errno: Int32) {
        self.call = call; self.subject = subject; self.errno = errno
    }

    /// The error of the last libzmq call on this thread.
    static func last(_ call: String, _ subject: String = "") -> ZmqError {
        ZmqError(call: call, subject: subject, errno: zmq_errno())
    }

    /// `EAGAIN`: a non-blocking call found nothing to do.
    public var wouldBlock: Bool { errno == EAGAIN }
    /// `EINTR`: a signal interrupted the call.
    public var interrupted: Bool { errno == EINTR }

    public var description: String {
        let text = String(cString: zmq_strerror(errno))
        return subject.isEmpty ? "\(call): \(text)" : "\(call)(\(subject)): \(text)"
    }
}

/// Runs a libzmq call returning -1 on failure and throws its ``ZmqError``.
@discardableResult
func check(_ result: Int32, _ call: String, _ subject: String = "") throws -> Int32 {
    if result == -1 { throw ZmqError.last(call, subject) }
    return result
}
