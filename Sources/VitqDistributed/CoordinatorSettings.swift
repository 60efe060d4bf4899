import Foundation

/// The settings of a ``CoordinatorState``; every default is documented.
public struct CoordinatorSettings: Sendable {
    /// The job sent to every worker; its shards fix the shard count, its `heartbeat`
    /// (default 1 s) and `liveness` (default 3) the failure detection.
    public var job: Job
    /// The inline frames the job's deliveries refer to (none when both are paths).
    public var blobs: [Data]
    /// Shards are assigned once this many workers have joined (default 1).
    public var expectedWorkers: Int
    /// A shard that must move more often than this aborts the run (default 8).
    public var maxAttempts: Int
    /// Every op the run must decide; the run finishes when all are journaled.
    public var ops: [String]
    /// The protocol versions the coordinator speaks (default ``ProtocolVersion/supported``).
    public var versions: [UInt8]

    public init(job: Job, blobs: [Data] = [], expectedWorkers: Int = 1, maxAttempts: Int = 8, ops: [String],
                versions: [UInt8] = ProtocolVersion.supported) {
        self.job = job; self.blobs = blobs; self.expectedWorkers = max(1, expectedWorkers); self.maxAttempts = maxAttempts
        self.ops = ops; self.versions = versions
    }

    /// The number of shards.
    public var shardCount: Int { job.shards.count }
    /// Silence after which a worker is dead: liveness × heartbeat.
    public var deadAfter: Double { Double(job.liveness) * job.heartbeat }
}
