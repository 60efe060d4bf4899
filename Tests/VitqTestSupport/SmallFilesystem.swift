import Foundation

/// A real, small file system for disk-full tests (or, read-only, for an unwritable folder even
/// as root): a tmpfs of `bytes` mounted at a fresh folder
/// (needs root, which the test machines have). `nil` when mounting is impossible; callers then
/// fall back to a check that still fails without space reservation.
public final class SmallFilesystem {
    /// The mount point.
    public let path: String

    public init?(bytes: Int, readOnly: Bool = false) {
        let dir = makeTempDir() + "/small"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/mount")
        p.arguments = ["-t", "tmpfs", "-o", "size=\(bytes)\(readOnly ? ",ro" : "")", "tmpfs", dir]
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { return nil }
        path = dir
    }

    /// The names in the file system's root.
    public var entries: [String] { (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] }

    deinit {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/umount")
        p.arguments = [path]
        if (try? p.run()) != nil { p.waitUntilExit() }
        try? FileManager.default.removeItem(atPath: (path as NSString).deletingLastPathComponent)
    }
}

/// Free bytes of the file system holding `path` (for the fallback when nothing can be mounted).
public func freeBytes(_ path: String) -> Int {
    var s = statvfs()
    guard statvfs(path, &s) == 0 else { return 0 }
    return Int(s.f_bavail) * Int(s.f_frsize)
}
