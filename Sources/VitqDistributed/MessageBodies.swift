import VitqQuant

/// The JSON bodies of the messages (frame 1), as they are on the wire.
enum Body {
    struct ShardAttempt: Codable { var shard: Int; var attempt: Int }
    struct Task: Codable { var request: UInt64; var shard: Int; var attempt: Int; var unit: WorkUnit }
    struct Job: Codable { var job: VitqDistributed.Job }
    struct Error: Codable { var code: ErrorCode; var message: String }
    struct Bye: Codable { var kind: ByeKind; var reason: String }
    struct Empty: Codable {}

    /// A RESULT's body: the echo of its task, the kind and the shape of frame 2.
    struct Result: Codable {
        enum Kind: String, Codable { case ranges, scores, outputError, counts, reconstruction }
        var request: UInt64
        var shard: Int
        var attempt: Int
        var kind: Kind
        var count: Int?
        var candidates: Int?
        var groups: Int?
        var stats: Int?
        var channels: Int?
        var rows: Int?
        /// The worker's peak RSS and spilled stage-1 bytes (``WorkerMemory``); both or neither.
        var peakRSS: Int?
        var spilled: Int?
        /// A `reconstruction` result's learned steps and stats, and the layout of frame 2 (the
        /// learned integers, one byte each, op after op).
        var reconstruction: Reconstruction?
    }

    /// A ``ReconstructionOutcome`` without its integers, which travel in frame 2.
    struct Reconstruction: Codable {
        struct Integers: Codable { var op: String; var count: Int }
        struct Input: Codable { var op: String; var quantizer: OperandQuant }
        struct Attention: Codable { var block: String; var learned: LearnedAttention }
        var stats: UnitReconstructionStats
        /// In frame order, ascending by op.
        var integers: [Integers]
        var inputs: [Input]
        var attention: [Attention]
    }
}
