import Foundation
import VitqDistributed
import VitqQuant
import VitqModels

/// A worker's compute side: one serial thread that loads the job, runs stage 1 for the shards
/// it is assigned and answers TASKs with ``CandidateScorer/run(_:)``, the same code
/// ``LocalExecutor`` calls in process. Replies go to `send`. A new ``generation`` (after a
/// reconnect) makes queued and running work of the old link produce nothing.
final class WorkerCompute: @unchecked Sendable {
    private let queue = DispatchQueue(label: "vitq-worker-compute")
    private let storage: StageOneStorage
    private let lie: WorkerLie?
    private let send: @Sendable (Message, Int) -> Void
    private let fatal: @Sendable (Error) -> Void
    private let log: @Sendable (String) -> Void
    private let lock = NSLock()
    private var currentGeneration = 0
    private var inputs: JobInputs?
    private var scorers: [Int: (attempt: Int, scorer: CandidateScorer)] = [:]
    private var shards: [ShardRange] = []
    /// Stage 1 of the shards this worker does not own, collected for whole-set units
    /// (reconstruction), which need every image's data.
    private var otherStores: [Int: CalibrationStore] = [:]

    /// `send(message, generation)` queues a reply for the link of that generation.
    init(storage: StageOneStorage, lie: WorkerLie? = nil, send: @escaping @Sendable (Message, Int) -> Void,
         fatal: @escaping @Sendable (Error) -> Void, log: @escaping @Sendable (String) -> Void) {
        self.storage = storage; self.lie = lie; self.send = send; self.fatal = fatal; self.log = log
    }

    /// Forgets every shard; work queued for older generations is skipped.
    func reset() -> Int {
        lock.withLock { currentGeneration += 1; return currentGeneration }
    }

    private func live(_ g: Int) -> Bool { lock.withLock { g == currentGeneration } }

    func job(_ job: Job, blobs: [Data], generation g: Int) {
        queue.async { [self] in
            guard live(g) else { return }
            scorers = [:]
            otherStores = [:]
            shards = job.shards
            do {
                inputs = try JobInputs(job: job, blobs: blobs, scratchDirectory: storage.spillDirectory)
                log("job: \(job.shards.count) shards, model \(job.model.sha256.prefix(12)), recipe \(inputs!.recipe.name)")
            } catch {
                inputs = nil
                let code: ErrorCode = error is ClusterError ? .integrity : .failed
                send(.error(code: code, message: "\(error)"), g)
                fatal(error)
            }
        }
    }

    func assign(shard: Int, attempt: Int, generation g: Int) {
        queue.async { [self] in
            guard live(g), let inputs, lie != .neverReady else { return }
            let range = shards[shard].range
            let t0 = Date()
            do {
                // A shard this worker already ran stage 1 for (for a whole-set unit) is not run again.
                let scorer = try otherStores.removeValue(forKey: shard).map { CandidateScorer(model: inputs.model, store: $0) }
                    ?? SearchCalibration.collect(model: inputs.model, recipe: inputs.recipe, shard: range,
                                                 budget: storage.budget, spillDirectory: storage.spillDirectory,
                                                 load: { inputs.load($0) })
                scorers[shard] = (attempt, scorer)
                log(String(format: "shard %d (images %d..<%d): stage 1 in %.1f s", shard, range.lowerBound, range.upperBound, Date().timeIntervalSince(t0)))
                send(.ready(shard: shard, attempt: attempt), g)
            } catch {
                send(.error(code: .failed, message: "stage 1 of shard \(shard): \(error)"), g)
                fatal(ClusterError.workerFailed("stage 1 of shard \(shard): \(error)"))
            }
        }
    }

    func task(_ t: WorkTask, generation g: Int) {
        queue.async { [self] in
            guard live(g), let inputs else { return }
            guard let s = scorers[t.shard], s.attempt == t.attempt else {
                log("TASK \(t.request) for shard \(t.shard) attempt \(t.attempt), which this worker does not hold: ignored")
                return
            }
            if let op = t.unit.ops.first(where: { !inputs.ops.contains($0) }) {
                send(.error(code: .malformed, message: "TASK \(t.request) names op \(op), which the job does not quantize"), g)
                return
            }
            if let problem = Self.problem(t.unit, inputs: inputs) {
                send(.error(code: .malformed, message: "TASK \(t.request): \(problem)"), g)
                return
            }
            let honest: WorkResult
            do {
                if case let .reconstruct(task) = t.unit, let settings = inputs.recipe.reconstruction {
                    honest = .reconstruction(try BlockReconstruction.reconstruct(task, model: inputs.model, stores: try everyStore(inputs),
                                                                                 settings: settings))
                    log(String(format: "reconstructed %@ in %.1f s", task.unit, honest.reconstruction?.units.first?.seconds ?? 0))
                } else {
                    honest = try s.scorer.run(t.unit)
                }
            } catch {
                send(.error(code: .failed, message: "TASK \(t.request) (\(t.unit.kind) of \(t.unit.op)): \(error)"), g)
                fatal(ClusterError.workerFailed("TASK \(t.request) (\(t.unit.kind) of \(t.unit.op)): \(error)"))
                return
            }
            let result = lie?.apply(honest) ?? honest
            let memory = WorkerMemory(peakResidentBytes: ProcessMemory.peakResidentBytes(),
                                      bytesSpilled: scorers.values.reduce(0) { $0 + $1.scorer.store.bytesSpilled }
                                          + otherStores.values.reduce(0) { $0 + $1.bytesSpilled })
            send(.result(WorkReply(request: t.request, shard: t.shard, attempt: t.attempt, result: result, memory: memory)), g)
        }
    }

    /// Stage 1 of every shard of the job, in shard order: the owned shards' stores, the others
    /// collected once (with the same code, so the same bits as their owners').
    private func everyStore(_ inputs: JobInputs) throws -> [CalibrationStore] {
        try shards.indices.map { i in
            if let s = scorers[i] { return s.scorer.store }
            if let s = otherStores[i] { return s }
            let t0 = Date()
            let store = try SearchCalibration.collect(model: inputs.model, recipe: inputs.recipe, shard: shards[i].range, budget: storage.budget,
                                                      spillDirectory: storage.spillDirectory, load: { inputs.load($0) }).store
            log(String(format: "shard %d: stage 1 in %.1f s for whole-set units", i, Date().timeIntervalSince(t0)))
            otherStores[i] = store
            return store
        }
    }

    /// The first of `decisions` (carried by `what`) that does not fit its op and the job's recipe, as one line.
    private static func misfit(_ decisions: [OpDecision], inputs: JobInputs, of what: String) -> String? {
        let check = DecisionCheck(model: inputs.model, recipe: inputs.recipe)
        for d in decisions {
            do { try check.validate(d) } catch { return "\(what): decision of op \(d.op): \(error)" }
        }
        return nil
    }

    /// Why the scorer cannot run `unit` on this job (nil: it can): a probe's decisions must fit
    /// their ops; a histogram's edges and bins must fit its op's groups; a nuclear norm needs an
    /// attention map or a linear op; a reconstruction unit needs a recipe with parallel
    /// reconstruction, one of the model's units and decisions that fit its ops.
    static func problem(_ unit: WorkUnit, inputs: JobInputs) -> String? {
        switch unit {
        case let .reconstruct(task):
            guard inputs.recipe.reconstruction?.mode == .parallel else { return "reconstruction unit \(task.unit): the job's recipe has no parallel reconstruction" }
            return BlockReconstruction.problem(task, model: inputs.model) ?? misfit(task.decisions, inputs: inputs, of: "reconstruction unit \(task.unit)")
        case let .probe(p):
            return misfit(p.decisions, inputs: inputs, of: "probe \(p.label)")
        case let .statistics(s) where s.kind == .histogram:
            let groups = OpShape.groups(s.op, model: inputs.model)
            guard s.edges.count == 2 * groups, s.absolute.count == groups else {
                return "histogram of op \(s.op): \(s.edges.count) edges and \(s.absolute.count) flags, the op has \(groups) groups"
            }
            return nil
        case let .statistics(s) where s.kind == .nuclear:
            let isLinear = inputs.model.linearOps.contains { $0.name == s.op && $0.op is Linear }
            guard s.op.hasSuffix(".matmul2") || isLinear else { return "nuclear norm of op \(s.op): only attention maps (<block>.matmul2) and linear ops have one" }
            return nil
        default:
            return nil
        }
    }
}
