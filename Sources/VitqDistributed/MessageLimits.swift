/// The size and count limits every decoded frame is checked against (Docs/PROTOCOL.md §2).
/// Defaults are the protocol's; tests may lower them.
public struct MessageLimits: Equatable, Sendable {
    /// Largest JSON body frame (default 16 MiB).
    public var maxBody = 16 << 20
    /// Largest inline model or image frame of a JOB (default 2 GiB).
    public var maxBlob = 2 << 30
    /// Most values in a RESULT's binary frame (default 2²⁵).
    public var maxValues = 1 << 25
    /// Longest op name, in bytes (default 256).
    public var maxName = 256
    /// Longest free text (ERROR message, BYE reason, HELLO name), in bytes (default 4,096).
    public var maxText = 4096
    /// Most candidates of a task (default 65,536).
    public var maxCandidates = 1 << 16
    /// Most scoring groups of a task (default 2²⁰).
    public var maxGroups = 1 << 20
    /// Most shards of a job (default 1,000,000).
    public var maxShards = 1_000_000
    /// Largest assignment attempt (default 1,000,000).
    public var maxAttempt = 1_000_000
    /// Most statistics per (candidate, group) (default 16).
    public var maxStats = 16
    /// Most bins of a histogram task (default 65,536).
    public var maxHistogramBins = 1 << 16
    /// Largest byte count a RESULT's memory report may state (2⁵⁰, a pebibyte).
    public static let maxReportedBytes = 1 << 50

    /// The protocol's limits.
    public static let `default` = MessageLimits()

    public init() {}
}
