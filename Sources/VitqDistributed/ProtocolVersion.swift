/// Protocol versions and their negotiation (Docs/PROTOCOL.md §3).
public enum ProtocolVersion {
    /// The version this build speaks best. Version 2 (BYE carries a typed `kind`) replaced 1;
    /// version 3 adds the whole-set `reconstruct` unit and its `reconstruction` result.
    public static let current: UInt8 = 3
    /// Every version this build speaks: a version-1 peer gets ERROR `version` in one line.
    public static let supported: [UInt8] = [2, 3]
    /// The versions a run with block reconstruction on the workers speaks: only those with the
    /// `reconstruct` unit, so an older worker is refused at HELLO rather than mid-run.
    public static let reconstruction: [UInt8] = [3]

    /// The highest version in both lists, or nil when they share none.
    public static func negotiate(ours: [UInt8], theirs: [UInt8]) -> UInt8? {
        Set(ours).intersection(theirs).max()
    }
}
