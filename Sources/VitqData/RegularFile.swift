import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reading image files safely: only regular files are read, never a FIFO, device, socket or
/// directory, and opening never blocks (O_NONBLOCK, then fstat's S_ISREG on the open descriptor,
/// so the check and the read are about the same file). Symbolic links to regular files are
/// followed, as torchvision does (datasets are often trees of links into a shared store).
enum RegularFile {
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

    /// Opens `path` for reading if it is a regular file; returns the descriptor and its size.
    static func open(_ path: String) throws -> (fd: Int32, size: Int) {
        let fd = Glibc.open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            throw DataError.unreadableImage(path: path, detail: "cannot open: " + String(cString: strerror(errno)))
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            Glibc.close(fd)
            throw DataError.unreadableImage(path: path, detail: "cannot stat: " + String(cString: strerror(e)))
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            Glibc.close(fd)
            throw DataError.unreadableImage(path: path, detail: "is \(kind(st.st_mode)), not a regular file")
        }
        return (fd, Int(st.st_size))
    }

    /// The first `limit` bytes of the regular file at `path` (all of it when `limit` is nil,
    /// refused when larger than `ImageLimits.maxFileBytes`).
    static func read(_ path: String, prefix limit: Int? = nil) throws -> [UInt8] {
        let (fd, size) = try open(path)
        defer { Glibc.close(fd) }
        if limit == nil, size > ImageLimits.maxFileBytes {
            throw DataError.unreadableImage(path: path, detail: "file is \(size) bytes, more than the \(ImageLimits.maxFileBytes)-byte limit for an image")
        }
        let want = min(size, limit ?? size)
        var buf = [UInt8](repeating: 0, count: want)
        var got = 0
        while got < want {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + got, want - got) }
            if n < 0 {
                if errno == EINTR { continue }
                throw DataError.unreadableImage(path: path, detail: "cannot read: " + String(cString: strerror(errno)))
            }
            if n == 0 { break }   // the file shrank since fstat
            got += n
        }
        if got < want { buf.removeLast(want - got) }
        return buf
    }
}
