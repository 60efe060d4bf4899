import Foundation

/// Work for the worker's compute side, on the current link.
public enum WorkerWork: Equatable, Sendable {
    /// Load the job (`blobs`: the JOB's inline frames).
    case job(Job, blobs: [Data])
    /// Run stage 1 for `shard` at `attempt`, then answer READY.
    case assign(shard: Int, attempt: Int)
    /// Run the task's unit, then answer RESULT.
    case task(WorkTask)
}

/// Why a worker stops serving.
public enum WorkerStop: Equatable, Sendable {
    /// The coordinator finished the run (BYE ``ByeKind/runFinished``) and the worker serves one run (`--once`).
    case finished
    /// The coordinator refused this worker: ERROR `version`, `refused` or `integrity` (`detail`: "code: message").
    case refused(detail: String)
    /// No coordinator answered for `seconds` (``WorkerSettings/wait``).
    case unreachable(seconds: Double)
    /// This worker cannot take the JOB (``WorkerSettings/refusal``).
    case cannotTakeJob(String)

    /// The process's exit status: 0 after a finished run, 1 otherwise.
    public var exitCode: Int32 { self == .finished ? 0 : 1 }
}

/// What the caller of ``WorkerState`` must do, in order. The state machine never does I/O
/// itself; the ZeroMQ shell (or a test) carries these out.
public enum WorkerDirective: Equatable, Sendable {
    /// Encode `message` at the link's version and send it.
    case send(Message)
    /// The JOB chose the link's protocol `version`: encode with it and accept only it from now
    /// on, and check shard indices against `shardCount`.
    case link(version: UInt8, shardCount: Int)
    /// Hand work to the compute side.
    case compute(WorkerWork)
    /// Write a line to the log.
    case log(String)
    /// Close the socket, wait `after` seconds, then open a new one and call ``WorkerState/connect()``.
    case reconnect(after: Double)
    /// Close the socket and stop: exit with ``WorkerStop/exitCode`` (and, unless finished, one line saying why).
    case stop(WorkerStop)
}
