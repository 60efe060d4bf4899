extension CandidateScorer {
    /// Runs `unit` on this scorer's shard: the one implementation of each unit of work, behind
    /// both ``LocalExecutor`` and a worker's TASKs. A ``WorkUnit/reconstruct(_:)`` unit needs
    /// every shard's data and is refused here (``BlockReconstruction/reconstruct(_:model:stores:settings:)`` runs it).
    public func run(_ unit: WorkUnit) throws -> WorkResult {
        defer { store.releaseSpilledPages() }   // spilled stage-1 data leaves the RSS between units
        switch unit {
        case let .ranges(op): return .ranges(ranges(op))
        case let .score(task): return .scores(score(task))
        case let .outputError(task): return .outputError(outputError(task))
        case let .statistics(task): return statistics(task)
        case let .probe(task): return .counts(probe(task))
        case .reconstruct: throw SearchExecutorError(description: "reconstruct of unit \(unit.op): needs every shard's stage-1 data, not one shard's")
        }
    }
}
