import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads small text files (recipes, config JSON beside a model) safely: only a regular file is
/// read (a FIFO would block and a device such as /dev/zero would never end; the open itself is
/// non-blocking), and never more than a bound.
public enum BoundedFile {
    /// The contents of `path`, which must be a regular file of at most `maxBytes` bytes; a
    /// ``FormatError/io(path:message:)`` naming the file otherwise.
    public static func read(_ path: String, maxBytes: Int) throws -> Data {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw FormatError.io(path: path, message: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw FormatError.io(path: path, message: String(cString: strerror(errno))) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw FormatError.io(path: path, message: "not a regular file") }
        guard st.st_size <= maxBytes else { throw FormatError.io(path: path, message: "\(st.st_size) bytes; at most \(maxBytes)") }
        var out = Data()
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while out.count <= maxBytes {
            let r = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if r < 0 && errno == EINTR { continue }
            guard r >= 0 else { throw FormatError.io(path: path, message: "read failed: \(String(cString: strerror(errno)))") }
            if r == 0 { break }
            out.append(contentsOf: chunk[0..<r])
        }
        guard out.count <= maxBytes else { throw FormatError.io(path: path, message: "over \(maxBytes) bytes") }
        return out
    }
}
