import Foundation

/// `vitq quantize --workers N`: N `vitq worker --once` processes of this same executable on
/// this machine, connected over ipc. They exit when the coordinator says BYE; ``stop()`` ends
/// any that are left, and each exits on its own when this process dies, even by SIGKILL
/// (`--parent-pid`, ``ParentWatch``).
public final class LocalWorkers: @unchecked Sendable {
    private var processes: [Process] = []

    /// Starts `count` workers connecting to `endpoint`, each with `threads` threads.
    public init(count: Int, endpoint: String, threads: Int, extraArguments: [String] = []) throws {
        guard let exe = Bundle.main.executablePath else { throw ClusterError.workerFailed("cannot find this executable to start workers") }
        for i in 0..<count {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = ["worker", "--connect", endpoint, "--once", "--threads", "\(threads)", "--name", "local-\(i + 1)",
                           "--wait", "60", "--parent-pid", "\(getpid())"] + extraArguments
            try p.run()
            processes.append(p)
        }
    }

    /// Why the run cannot go on: every worker process has exited. For ``CoordinatorOptions/watchdog``.
    public var failure: String? {
        processes.contains(where: \.isRunning) ? nil : "all \(processes.count) local workers exited (their errors are above)"
    }

    /// Waits up to `seconds` for the workers to exit, then terminates the rest.
    public func stop(waiting seconds: Double = 5) {
        let deadline = Date().addingTimeInterval(seconds)
        while processes.contains(where: \.isRunning) && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        for p in processes where p.isRunning { p.terminate() }
        for p in processes { p.waitUntilExit() }
    }
}

extension LocalWorkers {
    /// The prefix of a run's private folder in the temporary directory: `vitq-PID-`.
    public static func folderPrefix(pid: Int32 = getpid()) -> String { "vitq-\(pid)-" }

    /// Removes the `vitq-PID-*` folders in `directory` left by runs whose process no longer
    /// exists (a `quantize --workers` killed with SIGKILL cannot clean up after itself). A PID
    /// that is alive, or that this user cannot signal, keeps its folder. Returns the removed paths.
    @discardableResult
    public static func removeStaleFolders(in directory: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var removed: [String] = []
        for name in names where name.hasPrefix("vitq-") {
            let rest = name.dropFirst("vitq-".count)
            guard let dash = rest.firstIndex(of: "-"), let pid = Int32(rest[..<dash]), pid > 0, pid != getpid() else { continue }
            let path = (directory as NSString).appendingPathComponent(name)
            var st = stat()
            guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR, st.st_uid == getuid() else { continue }
            guard kill(pid, 0) != 0 && errno == ESRCH else { continue }
            if (try? FileManager.default.removeItem(atPath: path)) != nil { removed.append(path) }
        }
        return removed
    }
}

/// A worker started by ``LocalWorkers`` exits when the process that started it is gone: its
/// parent PID is checked at once (the parent may already have died) and then every 100 ms on a
/// thread of its own. Foundation's `Process` runs no code in the child before `exec`, so this
/// is done by the worker itself.
public enum ParentWatch {
    /// Exits the process (status 1, one line on stderr) as soon as `parent` is no longer its parent.
    public static func exitWithParent(_ parent: Int32) {
        @Sendable func gone() -> Bool { getppid() != parent }
        @Sendable func leave() -> Never {
            FileHandle.standardError.write(Data("vitq worker: the parent process \(parent) has exited; exiting\n".utf8))
            _exit(1)
        }
        if gone() { leave() }
        let t = Thread {
            while !gone() { usleep(100_000) }
            leave()
        }
        t.name = "parent-watch"
        t.start()
    }
}
