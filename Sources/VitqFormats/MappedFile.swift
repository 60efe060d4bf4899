import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A read-only memory mapping of a whole file, unmapped when released.
public final class MappedFile: @unchecked Sendable {
    /// The path the file was opened from (for messages).
    public let path: String
    /// The mapped bytes.
    public let bytes: UnsafeRawBufferPointer

    /// Maps `path` read-only. An empty file maps to an empty buffer.
    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw FormatError.io(path: path, message: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw FormatError.io(path: path, message: String(cString: strerror(errno))) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw FormatError.io(path: path, message: "is a directory") }
        let size = Int(st.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw FormatError.io(path: path, message: "mmap failed: \(String(cString: strerror(errno)))")
        }
        bytes = UnsafeRawBufferPointer(start: p, count: size)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }

    /// Reads a little-endian integer at `offset` (unaligned).
    func readLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
        var v: T = 0
        withUnsafeMutableBytes(of: &v) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + MemoryLayout<T>.size])) }
        return T(littleEndian: v)
    }
}

/// Writes a file atomically: the bytes go to a temporary file in the same folder, which is
/// fsynced and then renamed over `path`. On any error the temporary file is removed, so no
/// partial output is ever left behind.
public enum AtomicFile {
    /// Writes the chunks produced by `body` (via the `write` callback) to `path` atomically.
    public static func write(to path: String, _ body: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let base = (path as NSString).lastPathComponent
        let tmp = (dir.isEmpty ? "." : dir) + "/.\(base).tmp.\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw FormatError.io(path: path, message: "cannot create \(tmp): \(String(cString: strerror(errno)))") }
        var ok = false
        defer {
            if !ok { close(fd); unlink(tmp) }
        }
        try body { chunk in
            var off = 0
            while off < chunk.count {
                let n = Glibc.write(fd, chunk.baseAddress! + off, chunk.count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw FormatError.io(path: path, message: "write failed: \(String(cString: strerror(errno)))")
                }
                off += n
            }
        }
        guard fsync(fd) == 0 else { throw FormatError.io(path: path, message: "fsync failed: \(String(cString: strerror(errno)))") }
        guard close(fd) == 0 else { throw FormatError.io(path: path, message: "close failed") }
        ok = true
        guard rename(tmp, path) == 0 else {
            let msg = String(cString: strerror(errno))
            unlink(tmp)
            throw FormatError.io(path: path, message: "rename failed: \(msg)")
        }
    }

    /// Writes `data` to `path` atomically.
    public static func write(_ data: Data, to path: String) throws {
        try write(to: path) { emit in try data.withUnsafeBytes { try emit($0) } }
    }
}
