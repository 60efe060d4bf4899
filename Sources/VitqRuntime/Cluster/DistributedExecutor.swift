import VitqDistributed
import VitqQuant

/// ``SearchExecutor`` over workers: each unit is one request through the coordinator, whose
/// workers run ``CandidateScorer/run(_:)`` on their shards; the answer is the coordinator's
/// ``Reduction`` of the checked per-shard results. ``ScaleSearch`` runs unchanged on top of it,
/// exactly as on a ``LocalExecutor``.
final class DistributedExecutor: SearchExecutor {
    let server: CoordinatorServer

    init(server: CoordinatorServer) { self.server = server }

    func run(_ unit: WorkUnit) throws -> WorkResult { try server.submit(unit).reduced }
}
