import VitqDistributed
import VitqQuant

/// ``SearchExecutor`` over workers: each call is one request (one ``WorkUnit`` on every shard)
/// through the coordinator, returning the per-shard results in shard order. ``ScaleSearch``
/// runs unchanged on top of it, exactly as on a ``LocalExecutor``.
final class DistributedExecutor: SearchExecutor {
    let server: CoordinatorServer
    let shardCount: Int

    init(server: CoordinatorServer, shardCount: Int) { self.server = server; self.shardCount = shardCount }

    func ranges(_ op: String) throws -> [[Float]] {
        try server.submit(.ranges(op: op)).perShard.map {
            guard case let .ranges(v) = $0 else { throw ClusterError.aborted("ranges of \(op): a result of another kind was accepted") }
            return v
        }
    }

    func score(_ task: SearchTask) throws -> [ShardScores] {
        try server.submit(.score(task)).perShard.map {
            guard case let .scores(s) = $0 else { throw ClusterError.aborted("scores of \(task.op): a result of another kind was accepted") }
            return s
        }
    }

    func outputError(_ task: OutputErrorTask) throws -> [OutputErrorSums] {
        try server.submit(.outputError(task)).perShard.map {
            guard case let .outputError(e) = $0 else { throw ClusterError.aborted("output error of \(task.op): a result of another kind was accepted") }
            return e
        }
    }
}
