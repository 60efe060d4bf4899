import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Thrown when a waited-for condition did not hold in time; says what was awaited.
public struct WaitTimeout: Error, CustomStringConvertible {
    public let description: String
}

/// Waiting on files written by another process (a status file, a journal), woken by the folder's
/// inotify events rather than by polling on a timer.
public enum FileEvents {
    /// Returns once `condition()` holds, checked now and after every change in `folder` (a file
    /// created, written or renamed into it); throws ``WaitTimeout`` naming `what` (read at the
    /// timeout, so it can show the latest logs) after `seconds`.
    public static func wait(for what: @autoclosure () -> String, in folder: String, seconds: Double, until condition: () -> Bool) throws {
        let fd = inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
        guard fd >= 0 else { throw WaitTimeout(description: "\(what()): inotify_init1 failed (errno \(errno))") }
        defer { close(fd) }
        guard inotify_add_watch(fd, folder, UInt32(IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO)) >= 0 else {
            throw WaitTimeout(description: "\(what()): cannot watch \(folder) (errno \(errno))")
        }
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(seconds * 1e9)
        var events = [UInt8](repeating: 0, count: 1 << 16)
        while !condition() {
            let now = DispatchTime.now().uptimeNanoseconds
            guard now < deadline else { throw WaitTimeout(description: "\(what()): not within \(seconds) s") }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            _ = poll(&p, 1, Int32(clamping: (deadline - now) / 1_000_000 + 1))
            while read(fd, &events, events.count) > 0 {}   // drained: the next poll waits for new changes
        }
    }
}
