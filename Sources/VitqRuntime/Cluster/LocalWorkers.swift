import Foundation

/// `vitq quantize --workers N`: N `vitq worker --once` processes of this same executable on
/// this machine, connected over ipc. They exit when the coordinator says BYE; ``stop()`` ends
/// any that are left.
public final class LocalWorkers: @unchecked Sendable {
    private var processes: [Process] = []

    /// Starts `count` workers connecting to `endpoint`, each with `threads` threads.
    public init(count: Int, endpoint: String, threads: Int, extraArguments: [String] = []) throws {
        guard let exe = Bundle.main.executablePath else { throw ClusterError.workerFailed("cannot find this executable to start workers") }
        for i in 0..<count {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: exe)
            p.arguments = ["worker", "--connect", endpoint, "--once", "--threads", "\(threads)", "--name", "local-\(i + 1)",
                           "--wait", "60"] + extraArguments
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
