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
        // Non-blocking, so that a FIFO or a device cannot hang the open; only regular files are mapped.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw FormatError.io(path: path, message: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw FormatError.io(path: path, message: String(cString: strerror(errno))) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw FormatError.io(path: path, message: "is a directory") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw FormatError.io(path: path, message: "not a regular file") }
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
///
/// The temporary file has an unpredictable name (`.NAME.tmp.` and 16 random hex digits) and is
/// opened with `O_CREAT | O_EXCL | O_NOFOLLOW`, so nobody who can write to the folder can make a
/// write land in another file through a planted file or symlink.
public enum AtomicFile {
    /// Mode of ordinary outputs (less the umask, as `open` applies it).
    public static let publicMode: mode_t = 0o644
    /// Mode of secrets (keys): readable by the owner only, from the moment the file exists.
    public static let secretMode: mode_t = 0o600

    /// Writes the chunks produced by `body` (via the `write` callback) to `path` atomically,
    /// created with `mode` (less the umask). With `replacing: false` an existing `path` is an
    /// error and is left untouched (the file is linked into place, never renamed over it).
    public static func write(to path: String, mode: mode_t = publicMode, replacing: Bool = true,
                             _ body: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void) throws {
        let dir = (path as NSString).deletingLastPathComponent
        let folder = dir.isEmpty ? "." : dir
        let (fd, tmp) = try createTemporary(in: folder, for: path, mode: mode)
        var ok = false
        defer {
            if !ok { close(fd); unlink(tmp) }
        }
        try body { chunk in
            guard let start = chunk.baseAddress else { return }
            var off = 0
            while off < chunk.count {
                let n = Glibc.write(fd, start + off, chunk.count - off)
                if n < 0 {
                    if errno == EINTR { continue }
                    throw FormatError.io(path: path, message: "write failed: \(String(cString: strerror(errno)))")
                }
                off += n
            }
        }
        guard fsync(fd) == 0 else { throw FormatError.io(path: path, message: "fsync failed: \(String(cString: strerror(errno)))") }
        ok = true
        guard close(fd) == 0 else {
            unlink(tmp)
            throw FormatError.io(path: path, message: "close failed: \(String(cString: strerror(errno)))")
        }
        if replacing {
            guard rename(tmp, path) == 0 else {
                let msg = String(cString: strerror(errno))
                unlink(tmp)
                throw FormatError.io(path: path, message: "rename failed: \(msg)")
            }
        } else {
            // link(2) fails with EEXIST instead of replacing: no check-then-write race.
            var linked = link(tmp, path) == 0
            var e = errno
            if !linked, [EPERM, ENOTSUP, EOPNOTSUPP, ENOSYS, EMLINK].contains(e) {
                // A filesystem without hard links (exFAT, many SMB and FUSE mounts): check, then
                // rename. The check and the rename are two steps there, so a file created between
                // them could be replaced; on every filesystem with links the refusal is atomic.
                var st = stat()
                if lstat(path, &st) == 0 { e = EEXIST } else if rename(tmp, path) == 0 { linked = true } else { e = errno }
            }
            unlink(tmp)
            guard linked else {
                throw FormatError.io(path: path, message: e == EEXIST ? "exists; refusing to overwrite it" : "cannot create: \(String(cString: strerror(e)))")
            }
        }
        syncDirectory(folder)
    }

    /// Writes `data` to `path` atomically (see ``write(to:mode:replacing:_:)``).
    public static func write(_ data: Data, to path: String, mode: mode_t = publicMode, replacing: Bool = true) throws {
        try write(to: path, mode: mode, replacing: replacing) { emit in try data.withUnsafeBytes { try emit($0) } }
    }

    /// The prefix of the temporary files for `path` (the random suffix follows it).
    public static func temporaryPrefix(for path: String) -> String {
        ".\((path as NSString).lastPathComponent).tmp."
    }

    /// Creates a new temporary file in `folder` with an unpredictable name, exclusively, never
    /// through a symlink. Retries a few names on a collision.
    static func createTemporary(in folder: String, for path: String, mode: mode_t) throws -> (Int32, String) {
        var generator = SystemRandomNumberGenerator()
        var lastError: Int32 = EEXIST
        for _ in 0..<16 {
            let suffix = String(generator.next() as UInt64, radix: 16)
            let tmp = folder + "/" + temporaryPrefix(for: path) + String(repeating: "0", count: 16 - suffix.count) + suffix
            let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
            if fd >= 0 { return (fd, tmp) }
            lastError = errno
            if lastError != EEXIST { break }
        }
        throw FormatError.io(path: path, message: "cannot create a temporary file in \(folder): \(String(cString: strerror(lastError)))")
    }

    /// fsyncs a folder so that a rename in it survives a crash (best effort).
    static func syncDirectory(_ folder: String) {
        let fd = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }
}
