import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reading input files safely (images, class indices; the CLI checks `.npy` paths with `check`):
/// only regular files are read, never a FIFO, device, socket or
/// directory, and opening never blocks (O_NONBLOCK, then fstat's S_ISREG on the open descriptor,
/// so the check and the read are about the same file). Symbolic links to regular files are
/// followed, as torchvision does (datasets are often trees of links into a shared store).
public enum RegularFile {
    /// What kind of file `mode` describes, for messages.
    static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFREG: return "a regular file"
        case S_IFDIR: return "a directory"
        case S_IFIFO: return "a FIFO"
        case S_IFSOCK: return "a socket"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFLNK: return "a symbolic link"
        default: return "not a regular file"
        }
    }

    /// How a failure is reported: the detail becomes the caller's `DataError` for the path.
    public typealias Failure = (_ path: String, _ detail: String) -> DataError

    /// Image files fail as `unreadableImage`.
    static let imageFailure: Failure = { DataError.unreadableImage(path: $0, detail: $1) }

    /// Opens `path` for reading if it is a regular file; returns the descriptor and its size.
    static func open(_ path: String, failure: Failure = imageFailure) throws -> (fd: Int32, size: Int) {
        let fd = Glibc.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            throw failure(path, "cannot open: " + String(cString: strerror(errno)))
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            Glibc.close(fd)
            throw failure(path, "cannot stat: " + String(cString: strerror(e)))
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            Glibc.close(fd)
            throw failure(path, "is \(kind(st.st_mode)), not a regular file")
        }
        return (fd, Int(st.st_size))
    }

    /// Throws unless `path` is a regular file (checked without opening it for long, never blocking).
    public static func check(_ path: String, failure: Failure) throws {
        let (fd, _) = try open(path, failure: failure)
        Glibc.close(fd)
    }

    /// The first `limit` bytes of the regular file at `path` (all of it when `limit` is nil,
    /// refused when larger than `maxBytes`).
    static func read(_ path: String, prefix limit: Int? = nil, maxBytes: Int = ImageLimits.maxFileBytes,
                     failure: Failure = imageFailure) throws -> [UInt8] {
        let (fd, size) = try open(path, failure: failure)
        defer { Glibc.close(fd) }
        if limit == nil, size > maxBytes {
            throw failure(path, "file is \(size) bytes, more than the \(maxBytes)-byte limit")
        }
        let want = min(size, limit ?? size)
        var buf = [UInt8](repeating: 0, count: want)
        var got = 0
        while got < want {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + got, want - got) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure(path, "cannot read: " + String(cString: strerror(errno)))
            }
            if n == 0 { break }   // the file shrank since fstat
            got += n
        }
        if got < want { buf.removeLast(want - got) }
        return buf
    }
}
