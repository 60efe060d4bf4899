import VitqQuant

/// Progress deadlines (``Deadlines``): what a worker is waiting on and how long it may take.
extension CoordinatorState {
    /// What an interval of progress is: a stage 1, or one unit of a kind (each kind has its
    /// own measurements: a `ranges` unit is far cheaper than a `score` one).
    enum Kind: Hashable, CaseIterable { case stageOne, ranges, score, outputError, statistics, probe, reconstruct }

    /// The kind of an interval that ends with a RESULT for `unit`.
    static func kind(of unit: WorkUnit) -> Kind {
        switch unit {
        case .ranges: return .ranges
        case .score: return .score
        case .outputError: return .outputError
        case .statistics: return .statistics
        case .probe: return .probe
        case .reconstruct: return .reconstruct
        }
    }

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

    /// The current limit for an interval of `kind`, in seconds: `factor` × the slowest measured
    /// interval of that kind (at least the floor), or `unmeasuredFactor` × the floor before one
    /// was measured; doubled for each tick in which a worker missed it (``backoff``).
    func limit(_ kind: Kind) -> Double {
        let d = settings.deadlines
        let floor = kind == .stageOne ? d.stageOneFloor : kind == .reconstruct ? d.reconstructionFloor : d.taskFloor
        let base: Double
        if let slowest = intervals[kind]?.max() { base = max(floor, d.factor * slowest) } else { base = floor * d.unmeasuredFactor }
        return base * backoff[kind, default: 1]
    }

    /// The limit `peer` is held to now and what it is waiting for: the most generous of its
    /// outstanding work's limits. A worker's first stage 1 includes receiving and loading the
    /// JOB, which depends on its own link and disk, so it gets the unmeasured stage-1 limit.
    func deadline(of peer: PeerID) -> (limit: Double, what: String)? {
        guard let w = workers[peer] else { return nil }
        var best: (limit: Double, what: String)?
        func consider(_ limit: Double, _ what: String) { if best == nil || limit > best!.limit { best = (limit, what) } }
        if hasUnready(peer) {
            let d = settings.deadlines
            consider(w.proven ? limit(.stageOne) : d.stageOneFloor * d.unmeasuredFactor * backoff[.stageOne, default: 1],
                     w.proven ? "stage-1" : "first stage-1")
        }
        for key in w.tasksOut {
            guard let unit = requests[key.request]?.unit else { continue }
            let kind = Self.kind(of: unit)
            consider(limit(kind), "\(kind) TASK")
        }
        return best
    }

    /// The kinds `peer` is waiting on (the limits that a missed deadline doubles).
    func waitingKinds(_ peer: PeerID) -> Set<Kind> {
        guard let w = workers[peer] else { return [] }
        var kinds = Set(w.tasksOut.compactMap { requests[$0.request].map { Self.kind(of: $0.unit) } })
        if hasUnready(peer) { kinds.insert(.stageOne) }
        return kinds
    }

    /// The current stage-1 limit in seconds for a worker that has finished a stage 1 (status and tests).
    public var stageOneLimit: Double { limit(.stageOne) }
    /// The current limit in seconds for a TASK of `unit`'s kind (status and tests).
    public func taskLimit(for unit: WorkUnit) -> Double { limit(Self.kind(of: unit)) }
}
