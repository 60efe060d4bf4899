import Foundation

/// A self-pipe that wakes a thread blocked in `zmq_poll`: other threads ``signal()``, the
/// polling thread watches ``readEnd`` and ``drain()``s it.
final class WakePipe: @unchecked Sendable {
    let readEnd: Int32
    private let writeEnd: Int32

    init() throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ClusterError.system("pipe", errno) }
        readEnd = fds[0]; writeEnd = fds[1]
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
    }

    deinit { close(readEnd); close(writeEnd) }

    /// Wakes the polling thread (a full pipe already will).
    func signal() {
        var b: UInt8 = 1
        _ = write(writeEnd, &b, 1)
    }

    /// Empties the pipe.
    func drain() {
        var buf = [UInt8](repeating: 0, count: 256)
        while read(readEnd, &buf, buf.count) > 0 {}
    }
}
