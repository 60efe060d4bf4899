import ArgumentParser
import Foundation
import VitqRuntime
import VitqZmq

/// `vitq coordinator`: serve a search-recipe calibration to workers on other machines.
struct CoordinatorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator",
        abstract: "Shard a search-recipe calibration across `vitq worker`s over ZeroMQ and write the quantized file.",
        discussion: """
        Without CURVE keys the coordinator binds only loopback or ipc endpoints (unless --insecure). \
        Each op decision is journaled with fsync; after a crash, the same command with --resume finishes \
        the run with the same output bytes. See Docs/DEPLOY.md for multi-machine setups.
        """)

    @OptionGroup var calibration: CalibrationOptions
    @Option(help: "Endpoint to bind: tcp://HOST:PORT or ipc://PATH.")
    var bind: String = "tcp://127.0.0.1:5555"
    @Option(name: .customLong("expect-workers"), help: "Assign shards once this many workers have joined.")
    var expectWorkers: Int = 1
    @Option(name: .customLong("curve-secret"), help: "The coordinator's secret key file (vitq keygen); enables CURVE.")
    var curveSecret: String?
    @Option(help: "A file of allowed worker public keys, one per line (repeatable; needed with --curve-secret).")
    var allow: [String] = []
    @Flag(name: .customLong("allow-readable-key"), help: "Accept a --curve-secret file that the group or others may read.")
    var allowReadableKey = false
    @Flag(help: "Allow a non-loopback tcp endpoint without CURVE.")
    var insecure = false
    @Option(help: "The decision journal (default: OUT.journal).")
    var journal: String?
    @Flag(help: "Finish the run recorded in the journal.")
    var resume = false
    @Option(help: "Rewrite this JSON status file as the run goes.")
    var status: String?
    @Option(help: "inline: send the model and images in the JOB message; path: workers read the same paths (shared file system).")
    var ship: String = "inline"
    @Option(help: "Heartbeat interval in seconds.")
    var heartbeat: Double = 1
    @Option(help: "Missed heartbeats before a worker is dead.")
    var liveness: Int = 3
    @Option(help: "Ops searched at once.")
    var concurrency: Int = 4
    @Option(help: "Also send this seeded fraction of units (0...1) to a second worker and require byte-identical results; a mismatch is settled by a third worker and the minority dropped. Needs --expect-workers 2 or more (3 to settle a mismatch).")
    var verify: Double = 0
    @Option(name: .customLong("max-workers-per-key"), help: "With CURVE: most live workers per allowed public key (replicas sharing one worker key count together).")
    var maxWorkersPerKey: Int = CoordinatorOptions.defaultMaxWorkersPerKey
    @Option(name: .customLong("deadline-floor"), help: DeadlineFloorFlag.help)
    var deadlineFloor: Double?

    func validate() throws {
        if expectWorkers < 1 { throw ValidationError("--expect-workers must be at least 1") }
        if ShipMode(rawValue: ship) == nil { throw ValidationError("--ship must be inline or path, got '\(ship)'") }
        if !(heartbeat >= 0.01 && heartbeat <= 60) { throw ValidationError("--heartbeat must be in 0.01...60 seconds") }
        if !(1...100).contains(liveness) { throw ValidationError("--liveness must be in 1...100") }
        if concurrency < 1 { throw ValidationError("--concurrency must be at least 1") }
        try VerifyFlag.check(verify, workers: expectWorkers, workersFlag: "--expect-workers")
        if !(1...100_000).contains(maxWorkersPerKey) { throw ValidationError("--max-workers-per-key must be in 1...100000") }
        try DeadlineFloorFlag.check(deadlineFloor)
        if (curveSecret == nil) != allow.isEmpty { throw ValidationError("--curve-secret and --allow go together") }
        try EndpointFlag.check(bind, flag: "--bind", allowWildcardPort: true)
    }

    func run() throws {
        try reportingErrors {
            let log = stderrLine("vitq coordinator")
            var options = CoordinatorOptions(endpoint: bind, expectedWorkers: expectWorkers,
                                             journalPath: journal ?? calibration.out + ".journal",
                                             imagesPath: calibration.out + ".calibration.npy")
            if let curveSecret {
                options.curve = (try CurveKeys.readSecret(curveSecret, allowReadable: allowReadableKey), try allow.flatMap { try CurveKeys.read($0) })
            }
            options.insecure = insecure
            options.resume = resume
            options.statusPath = status
            options.ship = ShipMode(rawValue: ship)!
            options.heartbeat = heartbeat
            options.liveness = liveness
            options.concurrency = concurrency
            options.verify = verify
            options.maxWorkersPerKey = maxWorkersPerKey
            options.deadlineFloor = deadlineFloor
            let (r, fp, ds, calibRange) = try calibration.open(alsoInputs: coordinatorFiles(journal: options.journalPath))
            let start = Date()
            let (net, report) = try DistributedQuantization.run(model: fp, modelPath: calibration.model, overrides: calibration.modelOptions.overrides,
                                                                dataset: ds, calib: calibRange, recipe: r, out: calibration.out,
                                                                options: options, log: log)
            // The journal has served its purpose once the file is written.
            try? FileManager.default.removeItem(atPath: options.journalPath)
            try calibration.report(recipe: r, model: fp, dataset: ds, calib: calibRange, network: net, timings: report.timings,
                                   seconds: Date().timeIntervalSince(start), extra: report.jsonFields(workers: expectWorkers),
                                   extraLines: report.lines(workers: expectWorkers))
        }
    }
}
