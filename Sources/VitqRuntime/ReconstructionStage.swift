import Foundation
import VitqDistributed
import VitqFormats
import VitqModels
import VitqQuant
import VitqTensor

/// Block reconstruction as a stage of `vitq quantize` (in process, and after a distributed
/// search): the units of ``BlockReconstruction`` with a progress bar, then the learned rounding
/// and steps applied to the model and the decisions.
enum ReconstructionStage {
    typealias Outcome = (model: any SearchableModel, decisions: [String: OpDecision], units: [UnitReconstructionStats], seconds: Double)

    /// In process: every unit over stage 1's stores, one after another.
    static func run(model: any SearchableModel, recipe: Recipe, decisions: [String: OpDecision], stores: [CalibrationStore]) throws -> Outcome {
        guard let settings = recipe.reconstruction else { return (model, decisions, [], 0) }
        return try stage(model: model, decisions: decisions) { progress in
            try BlockReconstruction.run(model: model, decisions: decisions, stores: stores, settings: settings, progress: progress)
        }
    }

    /// After a distributed search, parallel mode: every unit is a whole-set unit of work
    /// (``WorkUnit/reconstruct(_:)``) that one worker runs on every image's stage-1 data, all
    /// units in flight at once; each finished unit is checked like any RESULT and journalled,
    /// and after `--resume` a unit the journal holds (for the very same task) is not run again.
    static func onWorkers(model: any SearchableModel, recipe: Recipe, decisions: [String: OpDecision], server: CoordinatorServer,
                          journal: DecisionJournal, shapes: [String: OpShape], log: @escaping @Sendable (String) -> Void) throws -> Outcome {
        try stage(model: model, decisions: decisions) { progress in
            try onWorkers(BlockReconstruction.tasks(model: model, decisions: decisions), server: server, journal: journal, shapes: shapes,
                          log: log, progress: progress)
        }
    }

    /// After a distributed search, sequential mode (or none): each unit needs the quantized
    /// output of the units before it, so once the workers are released stage 1 runs again here
    /// over the same fixed shards (the same bits as the workers') and the units run in this process.
    static func afterDistributedSearch(model: any SearchableModel, recipe: Recipe, decisions: [String: OpDecision], calib: Range<Int>,
                                       load: (Range<Int>) throws -> Tensor) throws -> Outcome {
        guard recipe.reconstruction != nil else { return (model, decisions, [], 0) }
        let started = Date()
        let storage = StageOneStorage()
        let stores = try SearchCalibration.shards(calib, recipe: recipe).map { shard in
            try SearchCalibration.collect(model: model, recipe: recipe, shard: shard, budget: storage.budget,
                                          spillDirectory: storage.spillDirectory, load: load).store
        }
        var result = try run(model: model, recipe: recipe, decisions: decisions, stores: stores)
        result.seconds = Date().timeIntervalSince(started)
        return result
    }

    /// `tasks` on the workers through `server`, merged in task order.
    private static func onWorkers(_ tasks: [ReconstructionTask], server: CoordinatorServer, journal: DecisionJournal, shapes: [String: OpShape],
                                  log: @Sendable (String) -> Void, progress: (UnitReconstructionStats) -> Void) throws -> ReconstructionOutcome {
        let keys = try tasks.map { SHA256.hex(of: try ProtocolJSON.encoder().encode($0)) }
        var outcomes = [ReconstructionOutcome?](repeating: nil, count: tasks.count)
        for (i, key) in keys.enumerated() {
            guard let saved = journal.reconstructions[key] else { continue }
            if let why = ResultCheck.problem(.reconstruction(saved), .reconstruct(tasks[i]), shape: nil, shapes: shapes) {
                throw ClusterError.journal(path: journal.path, detail: "reconstruction unit \(tasks[i].unit): \(why)")
            }
            outcomes[i] = saved
            progress(saved.units[0])
        }
        let resumed = outcomes.compactMap { $0 }.count
        if resumed > 0 { log("resuming: \(resumed) of \(tasks.count) reconstruction units are in \(journal.path)") }
        let pending = outcomes.indices.filter { outcomes[$0] == nil }
        let lock = NSLock(), arrived = DispatchSemaphore(value: 0)
        var answers: [(Int, Result<Completion, Error>)] = []
        for i in pending {
            server.submit(.reconstruct(tasks[i])) { answer in
                lock.withLock { answers.append((i, answer)) }
                arrived.signal()
            }
        }
        for _ in pending {
            arrived.wait()
            let (i, answer) = lock.withLock { answers.removeFirst() }
            guard let outcome = try answer.get().reduced.reconstruction else {
                throw ClusterError.aborted("reconstruction unit \(tasks[i].unit): answered with another kind of result")
            }
            try journal.append(JournaledReconstruction(task: keys[i], outcome: outcome))
            outcomes[i] = outcome
            progress(outcome.units[0])
        }
        var merged = ReconstructionOutcome()
        for o in outcomes { merged.merge(o!) }
        return merged
    }

    /// Runs `body` (which reports each finished unit) under a progress bar and applies its outcome.
    private static func stage(model: any SearchableModel, decisions: [String: OpDecision],
                              _ body: (@escaping (UnitReconstructionStats) -> Void) throws -> ReconstructionOutcome) throws -> Outcome {
        let started = Date()
        let bar = ProgressBar("reconstruct", total: try BlockReconstruction.units(model: model, decisions: decisions).count)
        let outcome = try body {
            bar.advance(1, detail: String(format: "%@ loss %.4g → %.4g%@", $0.unit, $0.lossBefore, $0.lossAfter, $0.kept ? "" : " (kept the search's)"))
        }
        bar.finish()
        let (final, finalDecisions) = BlockReconstruction.apply(outcome, model: model, decisions: decisions)
        return (final, finalDecisions, outcome.units, Date().timeIntervalSince(started))
    }
}
