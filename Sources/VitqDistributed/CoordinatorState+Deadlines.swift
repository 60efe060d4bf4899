/// Progress deadlines (``Deadlines``): what a worker is waiting on and how long it may take.
extension CoordinatorState {
    /// Whether `peer` holds a shard, in any role, whose stage 1 is not done.
    func hasUnready(_ peer: PeerID) -> Bool {
        shards.contains { s in Role.allCases.contains { s[$0]?.peer == peer && s[$0]?.ready == false } }
    }

    /// Whether `peer` has outstanding work: a stage 1 or an unanswered TASK.
    func hasWork(_ peer: PeerID) -> Bool {
        guard let w = workers[peer] else { return false }
        return !w.tasksOut.isEmpty || hasUnready(peer)
    }

    /// `peer` made progress of `kind`: the interval since its previous progress (or since it
    /// was given work while idle) is measured, and the next one starts now.
    mutating func progress(_ peer: PeerID, _ kind: Kind) {
        let now = clock.now
        if let since = workers[peer]?.busySince {
            var v = intervals[kind, default: []]
            v.append(now - since)
            if v.count > settings.deadlines.window { v.removeFirst(v.count - settings.deadlines.window) }
            intervals[kind] = v
        }
        workers[peer]?.busySince = now
    }

    /// The current limit for an interval of `kind`, in seconds.
    func limit(_ kind: Kind) -> Double {
        let d = settings.deadlines
        let floor = kind == .stageOne ? d.stageOneFloor : d.taskFloor
        guard let v = intervals[kind], !v.isEmpty else { return floor * d.unmeasuredFactor }
        let sorted = v.sorted()
        let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        return max(floor, d.factor * median)
    }

    /// The current stage-1 limit in seconds (status and tests).
    public var stageOneLimit: Double { limit(.stageOne) }
    /// The current TASK limit in seconds (status and tests).
    public var taskLimit: Double { limit(.task) }
}
