import Foundation
import VitqQuant

/// The one-byte message types (Docs/PROTOCOL.md §2).
public enum MessageType: UInt8, CaseIterable, Sendable {
    case hello = 0x01, job, assign, ready, task, result, heartbeat, error, bye

    /// The upper-case name used in logs and errors.
    public var name: String { String(describing: self).uppercased() }
}

/// The codes of an ERROR message.
public enum ErrorCode: String, Codable, CaseIterable, Sendable {
    case version, malformed, unknownPeer, integrity, failed, refused
}

/// What a BYE ends (its `kind` field, since protocol version 2).
public enum ByeKind: String, Codable, CaseIterable, Sendable {
    /// The coordinator finished the run: every op is decided. A `--once` worker exits 0; any
    /// other worker waits for the next run.
    case runFinished
    /// Only this link: the sender leaves, the run goes on (a worker reconnects as a new worker).
    case leaving
}

/// A worker's greeting: the versions it speaks and a label for logs.
public struct Hello: Equatable, Sendable, Codable {
    public var versions: [UInt8]
    public var name: String
    public init(versions: [UInt8] = ProtocolVersion.supported, name: String) { self.versions = versions; self.name = name }
}

/// One unit of stage-2 work for one shard, at the shard's current assignment attempt.
public struct WorkTask: Equatable, Sendable {
    public var request: UInt64
    public var shard: Int
    public var attempt: Int
    public var unit: WorkUnit
    public init(request: UInt64, shard: Int, attempt: Int, unit: WorkUnit) {
        self.request = request; self.shard = shard; self.attempt = attempt; self.unit = unit
    }
}

/// A worker's answer to a ``WorkTask``, echoing its request, shard and attempt.
public struct WorkReply: Equatable, Sendable {
    public var request: UInt64
    public var shard: Int
    public var attempt: Int
    public var result: WorkResult
    /// The worker's memory when it answered (reported, never trusted for the result).
    public var memory: WorkerMemory?
    public init(request: UInt64, shard: Int, attempt: Int, result: WorkResult, memory: WorkerMemory? = nil) {
        self.request = request; self.shard = shard; self.attempt = attempt; self.result = result; self.memory = memory
    }
}

/// What a worker reports of its memory with each RESULT: its peak resident set size and the
/// stage-1 bytes it spilled to files, both in bytes.
public struct WorkerMemory: Equatable, Sendable {
    public var peakResidentBytes: Int
    public var bytesSpilled: Int
    public init(peakResidentBytes: Int, bytesSpilled: Int) {
        self.peakResidentBytes = peakResidentBytes; self.bytesSpilled = bytesSpilled
    }
}

/// A protocol message, without its header (type and version travel in frame 0).
public enum Message: Equatable, Sendable {
    /// Worker → coordinator: join.
    case hello(Hello)
    /// Coordinator → worker: the job; `blobs` are the inline model/image frames (frames 2…).
    case job(Job, blobs: [Data])
    /// Coordinator → worker: own `shard` and run stage 1 for it.
    case assign(shard: Int, attempt: Int)
    /// Worker → coordinator: stage 1 of `shard` is done.
    case ready(shard: Int, attempt: Int)
    /// Coordinator → worker: a unit of work on one shard.
    case task(WorkTask)
    /// Worker → coordinator: the unit's result on that shard.
    case result(WorkReply)
    /// Both ways: a sign of life.
    case heartbeat
    /// Both ways: a failure the peer should know about.
    case error(code: ErrorCode, message: String)
    /// Both ways: the link ends, and with ``ByeKind/runFinished`` the run; `reason` is for logs.
    case bye(ByeKind, reason: String)

    /// The message's type byte.
    public var type: MessageType {
        switch self {
        case .hello: return .hello
        case .job: return .job
        case .assign: return .assign
        case .ready: return .ready
        case .task: return .task
        case .result: return .result
        case .heartbeat: return .heartbeat
        case .error: return .error
        case .bye: return .bye
        }
    }
}

/// A decoded message with the version its header carried.
public struct Envelope: Equatable, Sendable {
    public var version: UInt8
    public var message: Message
    public init(version: UInt8 = ProtocolVersion.current, message: Message) { self.version = version; self.message = message }
}
