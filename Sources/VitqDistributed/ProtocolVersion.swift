/// Protocol versions and their negotiation (Docs/PROTOCOL.md §3).
public enum ProtocolVersion {
    /// The version this build speaks best.
    public static let current: UInt8 = 1
    /// Every version this build speaks.
    public static let supported: [UInt8] = [1]

    /// The highest version in both lists, or nil when they share none.
    public static func negotiate(ours: [UInt8], theirs: [UInt8]) -> UInt8? {
        Set(ours).intersection(theirs).max()
    }
}
