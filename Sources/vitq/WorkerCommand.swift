import ArgumentParser
import Foundation
import VitqRuntime
import VitqZmq

/// `vitq worker`: hold calibration shards and score candidates for a coordinator.
struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Connect to a `vitq coordinator`, run stage 1 for the shards it assigns and score its candidates.")

    @Option(help: "The coordinator's endpoint: tcp://HOST:PORT or ipc://PATH.")
    var connect: String
    @Option(name: .customLong("curve-secret"), help: "This worker's secret key file (vitq keygen); enables CURVE.")
    var curveSecret: String?
    @Option(name: .customLong("server-key"), help: "The coordinator's public key file (needed with --curve-secret).")
    var serverKey: String?
    @Option(help: "A name for logs and the status file (default: HOST:PID).")
    var name: String?
    @Flag(help: "Exit after the run finishes (else wait for the next run).")
    var once = false
    @Flag(help: "When the run finishes (--once), print one JSON object naming this worker and its coordinator.")
    var json = false
    @Option(help: "Give up when no coordinator answers for this many seconds (0: never).")
    var wait: Double = 60
    @Option(name: .customLong("memory-budget"), help: ArgumentHelp(stringLiteral: MemoryBudgetFlag.help))
    var memoryBudget: Int?
    @Option(name: .customLong("spill-dir"), help: "Directory for stage-1 spill files and the staged job files (default: the temporary directory).")
    var spillDir: String?
    @Flag(name: .customLong("allow-readable-key"), help: "Accept a --curve-secret file that the group or others may read.")
    var allowReadableKey = false
    @Option(name: .customLong("parent-pid"), help: .hidden)
    var parentPID: Int32?
    @Option(help: .hidden)
    var lie: String?
    @OptionGroup var threadOptions: ThreadOptions

    /// What `--json` prints once the worker is done.
    struct Report: Encodable { var name: String, connect: String, curve: Bool }

    func validate() throws {
        if (curveSecret == nil) != (serverKey == nil) { throw ValidationError("--curve-secret and --server-key go together") }
        if wait < 0 { throw ValidationError("--wait must be non-negative") }
        if let lie, WorkerLie(rawValue: lie) == nil {
            throw ValidationError("--lie must be one of \(WorkerLie.allCases.map(\.rawValue).joined(separator: ", ")), got '\(lie)'")
        }
        try EndpointFlag.check(connect, flag: "--connect", allowWildcardPort: false)
        try MemoryBudgetFlag.check(memoryBudget)
    }

    func run() throws {
        try reportingErrors {
            if let parentPID { ParentWatch.exitWithParent(parentPID) }
            threadOptions.apply()
            let label = name ?? "\(ProcessInfo.processInfo.hostName):\(getpid())"
            var options = WorkerOptions(endpoint: connect, name: label)
            if let curveSecret, let serverKey {
                options.curve = (try CurveKeys.readSecret(curveSecret, allowReadable: allowReadableKey), try CurveKeys.readPublic(serverKey))
            }
            options.once = once
            options.lie = lie.flatMap(WorkerLie.init(rawValue:))
            options.wait = wait
            options.storage = MemoryBudgetFlag.storage(mib: memoryBudget, spillDir: spillDir)
            let log = stderrLine("vitq worker \(label)")
            options.storage.announcement.map(log)
            try WorkerClient(options: options, log: log).run()
            if json { try printJSON(Report(name: label, connect: connect, curve: options.curve != nil)) }
        }
    }
}
