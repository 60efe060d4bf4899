import VitqQuant

/// Counts candidate evaluations (candidates × images) passing through an executor.
final class CountingExecutor: SearchExecutor {
    let inner: SearchExecutor
    private(set) var candidateEvaluations = 0
    init(_ inner: SearchExecutor) { self.inner = inner }
    var shardCount: Int { inner.shardCount }
    func ranges(_ op: String) throws -> [[Float]] { try inner.ranges(op) }
    func score(_ task: SearchTask) throws -> [ShardScores] {
        candidateEvaluations += task.candidates.count
        return try inner.score(task)
    }
    func outputError(_ task: OutputErrorTask) throws -> [OutputErrorSums] { try inner.outputError(task) }
}
