import Foundation

/// Where the state machines (``CoordinatorState``, ``WorkerState``) and their shells read the
/// time: monotonic seconds. Injected, so tests drive time by hand.
public protocol MonotonicClock: AnyObject {
    /// Monotonic seconds since an arbitrary origin.
    var now: Double { get }
}

/// The process's monotonic clock.
public final class SystemClock: MonotonicClock, Sendable {
    public init() {}
    public var now: Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
}

/// A clock that moves only when told to (tests and simulations).
public final class ManualClock: MonotonicClock {
    public var now: Double
    public init(_ now: Double = 0) { self.now = now }
    /// Moves the time forward by `seconds`.
    public func advance(_ seconds: Double) { now += seconds }
}
