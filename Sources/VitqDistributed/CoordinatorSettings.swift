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
    /// The run finishes when the driver releases it (``CoordinatorState/release()``), not once
    /// every op is journaled: calibrators decide ops centrally, and the sensitivity probes run
    /// after the decisions.
    public var finishesOnRelease = false
    /// The result shape of every op (``OpShape``), from the model: each RESULT is checked
    /// against it. An op missing here is checked only against the task and the other shards.
    public var shapes: [String: OpShape]
    /// How long a worker may take for stage 1 and for a TASK (``Deadlines``).
    public var deadlines: Deadlines
    /// `--verify F`: the fraction of (request, shard) units also sent to a second worker
    /// (0: none, 1: all); results must be byte-identical.
    public var verifyFraction: Double
    /// The seed that picks the verified units (random per run by default, so a worker cannot
    /// know which of its units are checked).
    public var verifySeed: UInt64
    /// The protocol versions the coordinator speaks (default ``ProtocolVersion/supported``).
    public var versions: [UInt8]

    public init(job: Job, blobs: [Data] = [], expectedWorkers: Int = 1, maxAttempts: Int = 8, ops: [String],
                shapes: [String: OpShape] = [:], deadlines: Deadlines = Deadlines(), verifyFraction: Double = 0,
                verifySeed: UInt64 = UInt64.random(in: 0...UInt64.max), versions: [UInt8] = ProtocolVersion.supported) {
        self.job = job; self.blobs = blobs; self.expectedWorkers = max(1, expectedWorkers); self.maxAttempts = maxAttempts
        self.ops = ops; self.shapes = shapes; self.deadlines = deadlines
        self.verifyFraction = verifyFraction.isFinite ? min(max(verifyFraction, 0), 1) : 0
        self.verifySeed = verifySeed; self.versions = versions
    }

    /// The number of shards.
    public var shardCount: Int { job.shards.count }
    /// Silence after which a worker is dead: liveness × heartbeat.
    public var deadAfter: Double { Double(job.liveness) * job.heartbeat }
    /// A worker heard from within this window (two heartbeats, at most ``deadAfter``) may be
    /// given shards.
    public var freshWithin: Double { min(2 * job.heartbeat, deadAfter) }
    /// How long a `--verify` dispute waits for an eligible referee before the run aborts:
    /// 2 × ``deadAfter`` (a connected worker speaks or is dropped within ``deadAfter``).
    public var refereeWait: Double { 2 * deadAfter }
    /// Whether some units are verified.
    public var verifies: Bool { verifyFraction > 0 }
}

/// The expected shape of an op's results: what the coordinator knows from the model, so a
/// RESULT is checked against the TASK it answers, never only against another shard's.
public struct OpShape: Equatable, Sendable {
    /// Values of a `ranges` result: 1 for a linear op (its input), 2 × heads for a matmul.
    public var ranges: Int
    /// Channels of an `outputError` result: the linear op's output features (nil for a
    /// matmul, which has no bias correction).
    public var channels: Int?
    /// Weights of a linear op (out × in): the learned integers a reconstruction result carries
    /// for it (nil for a matmul).
    public var weights: Int?
    public init(ranges: Int, channels: Int?, weights: Int? = nil) { self.ranges = ranges; self.channels = channels; self.weights = weights }
}

/// Stage-1 and TASK deadlines (Docs/PROTOCOL.md §4). A worker with work outstanding must make
/// progress — an accepted READY or RESULT — within the limit of what it is waiting for, counted
/// from its previous progress or from when it was given work while idle. Each kind (stage 1,
/// `ranges`, `score`, `outputError`) has its own limit: `factor` × the slowest measured
/// interval of that kind, at least the floor; before any interval of that kind was measured,
/// and for a worker's first stage 1 (which includes loading the JOB), `unmeasuredFactor` × the
/// floor. Each tick in which a worker misses a kind's limit doubles that limit.
public struct Deadlines: Equatable, Sendable {
    /// Multiple of the slowest measured interval (default 8).
    public var factor: Double
    /// Least stage-1 limit in seconds (default 30; a JOB's loading counts in its first stage 1).
    public var stageOneFloor: Double
    /// Least TASK limit in seconds (default 10).
    public var taskFloor: Double
    /// Least limit of a reconstruction TASK in seconds (default 600): one unit is thousands of
    /// optimiser steps, and a worker's first one also runs stage 1 on every shard.
    public var reconstructionFloor: Double
    /// The limit before anything of the kind was measured, in floors (default 20: 600 s, 200 s, 12,000 s).
    public var unmeasuredFactor: Double
    /// Intervals kept per kind (the most recent; default 1024).
    public var window: Int

    public init(factor: Double = 8, stageOneFloor: Double = 30, taskFloor: Double = 10, reconstructionFloor: Double = 600,
                unmeasuredFactor: Double = 20, window: Int = 1024) {
        self.factor = factor; self.stageOneFloor = stageOneFloor; self.taskFloor = taskFloor; self.reconstructionFloor = reconstructionFloor
        self.unmeasuredFactor = unmeasuredFactor; self.window = max(1, window)
    }

    /// Both floors set to `seconds` (`--deadline-floor` of `vitq coordinator` and `vitq quantize --workers`).
    public init(floor seconds: Double) { self.init(stageOneFloor: seconds, taskFloor: seconds) }
}
