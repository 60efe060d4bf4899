import Foundation
import VitqData
import VitqDistributed
import VitqFormats
import VitqModels
import VitqQuant
import VitqZmq

/// How a coordinator listens and runs.
public struct CoordinatorOptions: Sendable {
    /// `tcp://HOST:PORT` or `ipc://PATH`.
    public var endpoint: String
    /// Shards are assigned once this many workers have joined.
    public var expectedWorkers: Int
    /// CURVE: the coordinator's key pair and the allowed worker public keys (nil: no CURVE).
    public var curve: (keys: CurveKeyPair, allowed: [String])?
    /// Bind a non-loopback endpoint without CURVE.
    public var insecure = false
    public var journalPath: String
    public var resume = false
    public var statusPath: String?
    public var ship: ShipMode = .inline
    /// Where `.path` shipping writes the preprocessed calibration images.
    public var imagesPath: String
    public var heartbeat = 1.0
    public var liveness = 3
    /// Ops searched at once (each request goes to every shard; more in flight keeps workers busy).
    public var concurrency = 4
    /// Checked on every timer tick: a non-nil reason aborts the run (e.g. every local worker exited).
    public var watchdog: (@Sendable () -> String?)?
    /// `--verify F`: the fraction of units also scored by a second worker (0: none).
    public var verify = 0.0
    /// Both floors of the stage-1 and TASK deadlines in seconds (`--deadline-floor`; nil: the
    /// defaults of ``Deadlines``).
    public var deadlineFloor: Double?
    /// Most live workers per CURVE public key (`--max-workers-per-key`).
    public var maxWorkersPerKey = CoordinatorOptions.defaultMaxWorkersPerKey
    /// The default of ``maxWorkersPerKey``: 256, above the replica counts of the shipped
    /// deployments, which give every replica the same worker key (Docs/DEPLOY.md).
    public static let defaultMaxWorkersPerKey = 256

    public init(endpoint: String, expectedWorkers: Int, journalPath: String, imagesPath: String) {
        self.endpoint = endpoint; self.expectedWorkers = expectedWorkers
        self.journalPath = journalPath; self.imagesPath = imagesPath
    }
}

/// What a distributed run reports besides the model.
public struct DistributedReport: Sendable {
    public var timings = QuantizationTimings()
    /// Ops replayed from the journal.
    public var resumedOps = 0
    /// Bytes of TASKs and RESULTs per op.
    public var wireBytesPerOp: [String: Int] = [:]
    /// All bytes both ways, JOB messages included.
    public var totalWireBytes = 0
    /// Per worker name, its last memory report (peak RSS, stage-1 bytes spilled).
    public var workerMemory: [String: WorkerMemory] = [:]
    /// The coordinator's own peak RSS and CPU seconds at the end of the run.
    public var coordinatorPeakResidentBytes = 0
    public var coordinatorCPUSeconds = 0.0
}

/// `vitq coordinator` (and `vitq quantize --workers N`) as a library call: the search method's
/// stage 2 through ``SearchCalibration/search(model:recipe:executor:concurrency:done:onDecision:)``,
/// or method `minmax`'s ``RangeCalibration``, then ``SensitivityAnalysis``, with workers as the
/// executor; then the same network and file as ``Quantization/run``.
public enum DistributedQuantization {
    public static func run(model: any SearchableModel, modelPath: String, overrides: ModelOverrides, dataset: ImageDataset,
                           calib: Range<Int>, recipe: Recipe, out: String, options o: CoordinatorOptions,
                           log: @escaping @Sendable (String) -> Void) throws -> (network: QuantizedNetwork, report: DistributedReport) {
        try Endpoint.validate(o.endpoint)
        if o.curve == nil && !o.insecure && !Endpoint.isLocal(o.endpoint) { throw ClusterError.insecureEndpoint(o.endpoint) }
        try BlockReconstruction.check(recipe, model: model)
        let start = Date()
        var material = try JobMaterial.make(modelPath: modelPath, model: model, overrides: overrides, dataset: dataset, calib: calib,
                                            recipe: recipe, ship: o.ship, imagesPath: o.imagesPath,
                                            heartbeat: o.heartbeat, liveness: o.liveness)
        let model = try SearchCalibration.searchModel(model, recipe: recipe, ranges: material.job.smoothingRanges)
        let check = DecisionCheck(model: model, recipe: recipe)
        let journal = try DecisionJournal(path: o.journalPath, fingerprint: material.fingerprint, resume: o.resume, check: check.validate)
        defer { journal.close() }
        let ops = SearchCalibration.ops(model: model, recipe: recipe)
        if !journal.decisions.isEmpty { log("resuming: \(journal.decisions.count) of \(ops.count) ops are in \(o.journalPath)") }

        let context = try ZmqContext()
        var zap: ZapAuthenticator?
        defer { zap?.stop() }
        let socket = try ZmqSocket(context, .router)
        defer { socket.close() }
        try socket.set(.routerMandatory, 1)
        try socket.setSendHighWaterMark(CoordinatorServer.sendQueueMessages)
        try socket.set(.sendTimeout, 5000)
        try socket.set(.linger, 1000)   // let the final BYEs go out
        try socket.set(.maxMessageSize, MessageLimits.default.maxBody + MessageLimits.default.maxValues * 8 + 64)
        if let curve = o.curve {
            zap = try ZapAuthenticator(context: context, allowedKeys: curve.allowed, onRefused: log)
            try socket.makeCurveServer(secretKey: curve.keys.secretKey)
        }
        try socket.bind(o.endpoint)
        log("listening on \(try socket.lastEndpoint)\(o.curve == nil ? "" : " (CURVE)"); waiting for \(o.expectedWorkers) worker(s)")

        var settings = CoordinatorSettings(job: material.job, blobs: material.blobs, expectedWorkers: o.expectedWorkers, ops: ops,
                                           shapes: try OpShape.of(ops, model: model), deadlines: o.deadlineFloor.map { Deadlines(floor: $0) } ?? Deadlines(), verifyFraction: o.verify)
        // Reconstruction units on the workers come after every op is decided: the run ends on release.
        let unitsOnWorkers = recipe.reconstruction?.mode == .parallel
        settings.finishesOnRelease = recipe.method != "search" || SensitivityAnalysis.applies(to: recipe) || recipe.mixedPrecision != nil || unitsOnWorkers
        if unitsOnWorkers { settings.versions = ProtocolVersion.reconstruction }
        if o.verify > 0 { log(String(format: "--verify %g: a seeded %.0f%% of units also go to a second worker", o.verify, o.verify * 100)) }
        let stats = ClusterStats(opsTotal: SearchCalibration.searchCount(model: model, recipe: recipe), resumed: journal.decisions.count, statusPath: o.statusPath, progress: log)
        let server = try CoordinatorServer(socket: socket, settings: settings, journal: journal, stats: stats,
                                           maxWorkersPerKey: o.curve == nil ? nil : o.maxWorkersPerKey, watchdog: o.watchdog, log: log)
        // The server holds the inline frames once, as shared frames: let go of the Data here.
        material.blobs = []
        settings.blobs = []
        server.start()
        let executor = CountingExecutor(DistributedExecutor(server: server))
        let searchStart = Date()
        let decisions: [String: OpDecision]
        let sensitivity: SensitivityReport?
        var fit: (kl: Double, agreement: Double)?
        var mixedPrecision: MixedPrecisionReport?
        var rebuiltOnWorkers: ReconstructionStage.Outcome?
        do {
            let decided: [String: OpDecision]
            if recipe.method == "search" {
                let outcome = try SearchCalibration.search(model: model, recipe: recipe, executor: executor, concurrency: o.concurrency,
                                                           done: journal.decisions, onDecision: { server.decided($0) })
                decided = outcome.decisions
                mixedPrecision = outcome.mixedPrecision
            } else {
                decided = try RangeCalibration.decisions(model: model, recipe: recipe, executor: executor)
            }
            // Finished probes go to the journal; after --resume they are answered from it.
            let probes = ProbeJournalExecutor(executor, journal: journal)
            (decisions, sensitivity) = try SensitivityAnalysis.apply(model: model, recipe: recipe, decisions: decided, executor: probes,
                                                                     concurrency: o.concurrency, log: log)
            if recipe.method != "search" { fit = try SensitivityAnalysis.fit(decisions, executor: probes) }
            if probes.resumed > 0 { log("resuming: \(probes.resumed) sensitivity probe(s) answered from \(o.journalPath)") }
            if unitsOnWorkers {
                rebuiltOnWorkers = try ReconstructionStage.onWorkers(model: model, recipe: recipe, decisions: decisions, server: server,
                                                                     journal: journal, shapes: settings.shapes, log: log)
            }
            server.release()
            try server.waitUntilFinished()
        } catch {
            server.shutdown()
            throw error
        }
        var report = DistributedReport()
        report.resumedOps = journal.decisions.count
        report.timings.collect = searchStart.timeIntervalSince(start)
        report.timings.search = Date().timeIntervalSince(searchStart) - (rebuiltOnWorkers?.seconds ?? 0)
        report.timings.candidateEvaluations = executor.candidateEvaluations
        report.timings.relativeErrors = decisions.compactMapValues(\.relativeError)
        report.timings.sensitivity = sensitivity
        report.timings.mixedPrecision = mixedPrecision
        report.timings.calibrationFit = fit
        report.wireBytesPerOp = stats.wireBytesPerOp
        report.totalWireBytes = stats.totalWireBytes
        report.workerMemory = stats.workerMemory
        report.coordinatorPeakResidentBytes = ProcessMemory.peakResidentBytes()
        report.coordinatorCPUSeconds = ProcessMemory.cpuSeconds()
        report.timings.bytesSpilled = report.workerMemory.values.reduce(0) { $0 + $1.bytesSpilled }
        // Sequential-mode units run here, once the workers are released.
        let rebuilt = try rebuiltOnWorkers ?? ReconstructionStage.afterDistributedSearch(model: model, recipe: recipe, decisions: decisions, calib: calib,
                                                                                load: { try dataset.batch(Array($0), size: model.imageSize) })
        report.timings.reconstruction = rebuilt.units
        report.timings.reconstruct = rebuilt.seconds
        let net = SearchCalibration.network(model: rebuilt.model, decisions: rebuilt.decisions)
        let provenance = QModelProvenance(sourceSHA256: material.job.model.sha256,
                                          sourceName: (modelPath as NSString).lastPathComponent, recipeJSON: recipe.canonicalJSON,
                                          partialQuantizationJSON: sensitivity?.canonicalJSON, mixedPrecisionJSON: mixedPrecision?.canonicalJSON)
        try QModelFile.write(net, provenance: provenance, to: out)
        report.timings.total = Date().timeIntervalSince(start)
        return (net, report)
    }
}

extension DistributedQuantization {
    /// ``run(model:modelPath:overrides:dataset:calib:recipe:out:options:log:)`` with `count` local
    /// worker processes of `threads` threads over ipc in `directory` (which holds the endpoint, the
    /// journal and the images file). The workers have exited or been stopped when it returns.
    public static func runWithLocalWorkers(count: Int, threads: Int, verify: Double = 0, deadlineFloor: Double? = nil, workerArguments: [String] = [], directory: String,
                                           model: any SearchableModel, modelPath: String, overrides: ModelOverrides,
                                           dataset: ImageDataset, calib: Range<Int>, recipe: Recipe, out: String,
                                           log: @escaping @Sendable (String) -> Void) throws -> (network: QuantizedNetwork, report: DistributedReport) {
        var options = CoordinatorOptions(endpoint: "ipc://\(directory)/coordinator.ipc", expectedWorkers: count,
                                         journalPath: directory + "/journal", imagesPath: directory + "/calibration.npy")
        options.concurrency = max(2, count)
        options.verify = verify
        options.deadlineFloor = deadlineFloor
        let workers = try LocalWorkers(count: count, endpoint: options.endpoint, threads: threads, extraArguments: workerArguments)
        options.watchdog = { workers.failure }
        do {
            let result = try run(model: model, modelPath: modelPath, overrides: overrides, dataset: dataset, calib: calib,
                                 recipe: recipe, out: out, options: options, log: log)
            workers.stop()
            return result
        } catch {
            workers.stop(waiting: 0)
            throw error
        }
    }
}

extension DistributedReport {
    /// The report's fields for `--json`.
    public func jsonFields(workers: Int) -> [String: Any] {
        ["workers": workers, "resumed_ops": resumedOps, "wire_bytes_total": totalWireBytes, "wire_bytes_per_op": wireBytesPerOp,
         "worker_peak_rss_bytes": workerMemory.mapValues(\.peakResidentBytes), "worker_spilled_bytes": workerMemory.mapValues(\.bytesSpilled),
         "coordinator_peak_rss_bytes": coordinatorPeakResidentBytes, "coordinator_cpu_seconds": coordinatorCPUSeconds]
    }

    /// The report's text lines.
    public func lines(workers: Int) -> [String] {
        let perOp = wireBytesPerOp.values
        let mean = perOp.isEmpty ? 0 : perOp.reduce(0, +) / perOp.count
        let memory = workerMemory.sorted { $0.key < $1.key }.map { name, m in
            "\(name) \(ClusterStats.bytes(m.peakResidentBytes))" + (m.bytesSpilled > 0 ? " (\(ClusterStats.bytes(m.bytesSpilled)) spilled)" : "")
        }
        return [String(format: "workers     %d; %@ on the wire (mean %@ per op)%@", workers, ClusterStats.bytes(totalWireBytes),
                       ClusterStats.bytes(mean), resumedOps > 0 ? "; \(resumedOps) ops resumed from the journal" : "")]
            + (memory.isEmpty ? [] : ["peak RSS    " + memory.joined(separator: ", ")])
    }
}
