/// The settings of a ``WorkerState``; every default is documented.
public struct WorkerSettings: Sendable {
    /// The coordinator's endpoint, for logs (`vitq worker --connect`).
    public var endpoint: String
    /// The HELLO's label for the coordinator's logs and status (`vitq worker --name`).
    public var name: String
    /// Stop after the coordinator says the run is finished (`--once`; default false: serve the next run).
    public var once: Bool
    /// Give up when no coordinator answered for this many seconds (`--wait`; default 60; 0: never).
    public var wait: Double
    /// The first reconnect delay in seconds (default 1); each lost link doubles it.
    public var firstBackoff: Double
    /// The longest reconnect delay in seconds (default 32).
    public var maxBackoff: Double
    /// The pause in seconds before joining the next run after a finished one (default 1).
    public var nextRunPause: Double
    /// Why this worker cannot take `job` (nil: it can), e.g. the JOB names a model family this
    /// build does not know. The worker then answers ERROR `failed` and stops.
    public var refusal: @Sendable (Job) -> String?

    public init(endpoint: String, name: String, once: Bool = false, wait: Double = 60, firstBackoff: Double = 1, maxBackoff: Double = 32,
                nextRunPause: Double = 1, refusal: @escaping @Sendable (Job) -> String? = { _ in nil }) {
        self.endpoint = endpoint; self.name = name; self.once = once; self.wait = wait
        self.firstBackoff = firstBackoff; self.maxBackoff = max(firstBackoff, maxBackoff); self.nextRunPause = nextRunPause
        self.refusal = refusal
    }
}
