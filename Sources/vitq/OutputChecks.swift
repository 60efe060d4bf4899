import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A flag whose value cannot be used, as one line naming the flag (printed by `reportingErrors`,
/// or by ArgumentParser without the usage text when thrown from `validate()`).
struct FlagError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Upper bounds of numeric flags, so that no later sum or product of them can overflow.
enum FlagLimits {
    /// `--batch`: images per forward pass.
    static let maxBatch = 1 << 16
    /// `--threads`.
    static let maxThreads = 1024
    /// `--workers`: local worker processes.
    static let maxWorkers = 256
    /// `--memory-budget` in MiB (its bytes must fit an Int).
    static let maxMemoryBudgetMiB = Int.max >> 21
}

/// Checks on output paths, made before any work starts: the folder exists and is writable, the
/// output is not a directory, and it is none of the run's input files (by device and inode, so
/// also through a symlink or a hard link).
enum OutputChecks {
    /// Throws unless `path` can be created: its folder exists, is a directory and is writable,
    /// and `path` itself is not a directory.
    static func writableFolder(of path: String, flag: String) throws {
        var st = stat()
        if stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR { throw FlagError("\(flag) \(path): is a directory") }
        let parent = (path as NSString).deletingLastPathComponent
        let folder = parent.isEmpty ? "." : parent
        guard stat(folder, &st) == 0 else { throw FlagError("\(flag) \(path): the folder \(folder) does not exist") }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { throw FlagError("\(flag) \(path): \(folder) is not a directory") }
        guard access(folder, W_OK | X_OK) == 0 else { throw FlagError("\(flag) \(path): the folder \(folder) is not writable") }
    }

    /// Throws unless `path` is an existing, writable directory.
    static func writableDirectory(_ path: String, flag: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else { throw FlagError("\(flag) \(path): does not exist") }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { throw FlagError("\(flag) \(path): is not a directory") }
        guard access(path, W_OK | X_OK) == 0 else { throw FlagError("\(flag) \(path): is not writable") }
    }

    /// Throws if the output `out` (given by `flag`) is the same file as any of `inputs` (flag, path).
    static func notAnInput(_ out: String, flag: String, inputs: [(flag: String, path: String?)]) throws {
        for input in inputs {
            guard let path = input.path, sameFile(out, path) else { continue }
            throw FlagError("\(flag) \(out) is the \(input.flag) input \(path); refusing to overwrite an input")
        }
    }

    /// Whether `a` and `b` name the same file: the same device and inode after symlinks when
    /// both exist, else the same absolute path (a file the run is about to create).
    static func sameFile(_ a: String, _ b: String) -> Bool {
        var sa = stat(), sb = stat()
        if stat(a, &sa) == 0, stat(b, &sb) == 0 { return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino }
        func absolute(_ p: String) -> String { URL(fileURLWithPath: p).standardizedFileURL.resolvingSymlinksInPath().path }
        return absolute(a) == absolute(b)
    }
}

/// Whether `path` is a symlink (dangling or not).
func isSymlink(_ path: String) -> Bool {
    var st = stat()
    return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK
}
