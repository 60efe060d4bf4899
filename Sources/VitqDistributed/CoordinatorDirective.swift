import VitqQuant

/// A peer as the coordinator knows it: the ROUTER routing id, as the shell spells it (e.g. hex).
public struct PeerID: Hashable, Sendable, CustomStringConvertible {
    public var id: String
    public init(_ id: String) { self.id = id }
    public var description: String { id }
}

/// A request: one unit of work on every shard.
public typealias RequestID = UInt64

/// A finished request: its unit, the per-shard results in shard order and their reduction.
public struct Completion: Equatable, Sendable {
    public var request: RequestID
    public var unit: WorkUnit
    /// Shard 0 first, whatever order the results arrived in.
    public var perShard: [WorkResult]
    /// ``Reduction/reduce(_:for:)`` of `perShard`.
    public var reduced: WorkResult
}

/// What the caller of ``CoordinatorState`` must do, in order. The state machine never does
/// I/O itself; the ZeroMQ shell (or a test) carries these out.
public enum CoordinatorDirective: Equatable, Sendable {
    /// Encode `message` with the peer's version and send it.
    case send(Message, to: PeerID)
    /// Encode `message` with `version` and send it: the ERROR `version` that refuses a HELLO
    /// goes at the highest version the peer offered, one it can read whatever this side speaks.
    case sendAtVersion(Message, to: PeerID, version: UInt8)
    /// Shard `shard` now belongs to a worker (status and progress only; the ASSIGN goes in a `.send`).
    case assign(shard: Int, to: PeerID, attempt: Int)
    /// Shard `shard` moved off a dropped worker; `to` nil means it waits for a worker to join.
    case reassign(shard: Int, from: PeerID, to: PeerID?, attempt: Int)
    /// A request is complete: hand the results back to whoever submitted it.
    case complete(Completion)
    /// Append the decision to the journal and fsync it, then call ``CoordinatorState/journaled(_:)``.
    case journal(OpDecision)
    /// Write a line to the log.
    case log(String)
    /// Forget the peer (it is dead, left, or misbehaved); later messages from it are unknown-peer messages.
    case drop(PeerID, reason: String)
    /// Every op is journaled and no request is outstanding: write the model and exit.
    case finish
    /// The run cannot go on (a shard failed too often).
    case abort(String)
}
