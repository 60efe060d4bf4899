/// Every shard's scorer in this process: each unit runs on every scorer through
/// ``CandidateScorer/run(_:)``, as on a worker, and the results are merged by ``Reduction``.
public final class LocalExecutor: SearchExecutor {
    public let scorers: [CandidateScorer]
    public init(scorers: [CandidateScorer]) { self.scorers = scorers }

    public func run(_ unit: WorkUnit) throws -> WorkResult {
        guard let merged = Reduction.reduce(try scorers.map { try $0.run(unit) }, for: unit) else {
            throw SearchExecutorError.unmerged(unit, shards: scorers.count)
        }
        return merged
    }
}
