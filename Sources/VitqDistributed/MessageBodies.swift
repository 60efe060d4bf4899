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
        enum Kind: String, Codable { case ranges, scores, outputError, counts }
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
    }
}
