import VitqQuant

/// Joining, placement of shards on live workers, readiness, results and failures of workers.
extension CoordinatorState {
    // MARK: join

    mutating func join(_ peer: PeerID, _ hello: Hello, into out: inout [CoordinatorDirective]) {
        guard let version = ProtocolVersion.negotiate(ours: settings.versions, theirs: hello.versions) else {
            let text = "coordinator speaks \(settings.versions), worker speaks \(hello.versions)"
            out.append(.log("\(peer) (\(hello.name)): no common protocol version: \(text)"))
            out.append(.sendAtVersion(.error(code: .version, message: text), to: peer, version: hello.versions.max() ?? ProtocolVersion.current))
            out.append(.drop(peer, reason: "no common protocol version"))
            return
        }
        let now = clock.now
        workers[peer] = Worker(peer: peer, name: hello.name, version: version, joined: joins, lastHeard: now, lastSent: now)
        joins += 1
        out.append(.log("\(peer) (\(hello.name)) joined, protocol version \(version)"))
        send(.job(settings.job, blobs: settings.blobs), to: peer, into: &out)
        if phase == .waiting, workers.count >= settings.expectedWorkers {
            phase = .running
            let live = liveWorkers
            for s in shards.indices { give(s, .owner, to: live[s % live.count], into: &out) }
            if settings.verifies {
                if live.count >= 2 {
                    for s in shards.indices { give(s, .checker, to: live[(s + 1) % live.count], into: &out) }
                } else {
                    out.append(.log("--verify: only 1 worker; verification needs 2 (3 to settle a mismatch), so units stay unchecked until more join"))
                }
            }
        }
        // A worker that joins later is given shards once it has spoken after its HELLO.
    }

    /// The live workers that may be given `shard`: heard from after their HELLO and within
    /// ``CoordinatorSettings/freshWithin``, not holding the shard already. For a shard that
    /// has moved more than once, workers that have finished a stage 1 go first.
    func candidate(for shard: Int) -> PeerID? {
        let now = clock.now
        let taken = Set(Role.allCases.compactMap { shards[shard][$0]?.peer })
        var pool = workers.values.filter { !taken.contains($0.peer) && $0.spoke && now - $0.lastHeard < settings.freshWithin }
        if shards[shard].moves > 1, pool.contains(where: \.proven) { pool = pool.filter(\.proven) }
        var load: [PeerID: Int] = [:]
        for s in shards { for role in Role.allCases { if let h = s[role] { load[h.peer, default: 0] += 1 } } }
        return pool.min { (load[$0.peer, default: 0], $0.joined) < (load[$1.peer, default: 0], $1.joined) }?.peer
    }

    /// Gives `shard` to `peer` in `role` at the shard's next attempt and sends ASSIGN.
    mutating func give(_ shard: Int, _ role: Role, to peer: PeerID, into out: inout [CoordinatorDirective]) {
        if !hasWork(peer) { workers[peer]?.busySince = clock.now }
        let attempt = shards[shard].nextAttempt
        shards[shard].nextAttempt += 1
        shards[shard][role] = Holder(peer: peer, attempt: attempt)
        if role == .owner { out.append(.assign(shard: shard, to: peer, attempt: attempt)) } else {
            out.append(.log("shard \(shard): \(role == .checker ? "checker" : "referee") \(peer) (attempt \(attempt))"))
        }
        send(.assign(shard: shard, attempt: attempt), to: peer, into: &out)
    }

    /// Fills every shard's empty roles from the live workers: an owner for an orphan shard; with
    /// `--verify` a checker; a referee for a shard in dispute.
    mutating func placeVacancies(into out: inout [CoordinatorDirective]) {
        guard phase == .running else { return }
        for s in shards.indices {
            if shards[s].owner == nil, let p = candidate(for: s) { give(s, .owner, to: p, into: &out) }
            if settings.verifies, shards[s].owner != nil, shards[s].checker == nil, let p = candidate(for: s) { give(s, .checker, to: p, into: &out) }
            if shards[s].referee == nil, requests.values.contains(where: { $0.disputed.contains(s) }), let p = candidate(for: s) {
                give(s, .referee, to: p, into: &out)
            }
        }
        checkDisputes(into: &out)
    }

    /// Aborts the run when a dispute cannot be settled: no worker other than the shard's owner
    /// and checker is connected, or none became eligible (``candidate(for:)``) within
    /// ``CoordinatorSettings/refereeWait`` (every connected worker either speaks, and becomes
    /// eligible, or is dropped within that time, so a dispute never waits for ever). Runs after
    /// every placement: on ticks, joins' first words and drops.
    mutating func checkDisputes(into out: inout [CoordinatorDirective]) {
        guard phase == .running else { return }
        let now = clock.now
        for s in shards.indices {
            guard shards[s].referee == nil, let id = requests.keys.sorted().first(where: { requests[$0]!.disputed.contains(s) }),
                  let owner = shards[s].owner?.peer, let checker = shards[s].checker?.peer else {
                refereeWaitSince[s] = nil
                continue
            }
            let since = refereeWaitSince[s] ?? now
            refereeWaitSince[s] = since
            let others = workers.keys.filter { $0 != owner && $0 != checker }.sorted { $0.id < $1.id }
            if others.isEmpty {
                phase = .aborted
                out.append(.abort("--verify: workers \(owner) and \(checker) disagree on request \(id) shard \(s) and no third worker is connected to decide (a mismatch needs 3 workers)"))
                return
            }
            if now - since >= settings.refereeWait {
                phase = .aborted
                let wait = String(format: "%.1f", settings.refereeWait)
                out.append(.abort("--verify: workers \(owner) and \(checker) disagree on request \(id) shard \(s) and no eligible third worker appeared within \(wait) s to decide (connected but silent or stale: \(others.map(\.id).joined(separator: ", ")))"))
                return
            }
        }
    }

    // MARK: stage 1 and results

    mutating func ready(_ peer: PeerID, shard: Int, attempt: Int, into out: inout [CoordinatorDirective]) {
        guard shard >= 0, shard < shards.count else { violation(peer, "READY for shard \(shard) of \(shards.count)", into: &out); return }
        guard let role = shards[shard].role(of: peer), let h = shards[shard][role], h.attempt == attempt, !h.ready else {
            out.append(.log("\(peer): stale or duplicate READY for shard \(shard) attempt \(attempt), ignored"))
            return
        }
        shards[shard][role]!.ready = true
        progress(peer, .stageOne)
        workers[peer]!.proven = true
        for id in requests.keys.sorted() { dispatch(id, shard: shard, into: &out) }
    }

    /// Sends request `id`'s TASK for `shard` to each ready holder whose answer is needed and
    /// not yet asked for: the owner always, the checker for a verified unit, the referee in a dispute.
    mutating func dispatch(_ id: RequestID, shard: Int, into out: inout [CoordinatorDirective]) {
        guard let request = requests[id], request.targets.contains(shard), request.results[shard] == nil else { return }
        for role in Role.allCases {
            switch role {
            case .owner: break
            case .checker: guard request.checked.contains(shard) else { continue }
            case .referee: guard request.disputed.contains(shard) else { continue }
            }
            guard let h = shards[shard][role], h.ready, request.answers[shard]?[h.peer] == nil, let w = workers[h.peer] else { continue }
            let key = TaskKey(request: id, shard: shard)
            guard !w.tasksOut.contains(key) else { continue }
            if !hasWork(h.peer) { workers[h.peer]!.busySince = clock.now }
            workers[h.peer]!.tasksOut.insert(key)
            send(.task(WorkTask(request: id, shard: shard, attempt: h.attempt, unit: request.unit)), to: h.peer, into: &out)
        }
    }

    mutating func result(_ peer: PeerID, _ r: WorkReply, into out: inout [CoordinatorDirective]) {
        guard r.shard >= 0, r.shard < shards.count else { violation(peer, "RESULT for shard \(r.shard) of \(shards.count)", into: &out); return }
        let key = TaskKey(request: r.request, shard: r.shard)
        guard let request = requests[r.request], request.results[r.shard] == nil, workers[peer]!.tasksOut.contains(key),
              attempt(of: r.shard, by: peer) == r.attempt else {
            out.append(.log("\(peer): late or duplicate RESULT (request \(r.request), shard \(r.shard), attempt \(r.attempt)), ignored"))
            return
        }
        if let why = ResultCheck.problem(r.result, request.unit, shape: settings.shapes[request.unit.op],
                                         like: request.results.lazy.compactMap { $0 }.first, shapes: settings.shapes) {
            violation(peer, "RESULT for request \(r.request) shard \(r.shard) (op \(request.unit.op)): \(why)", into: &out)
            return
        }
        workers[peer]!.tasksOut.remove(key)
        progress(peer, Self.kind(of: request.unit))
        requests[r.request]!.answers[r.shard, default: [:]][peer] = r.result
        resolve(r.request, shard: r.shard, into: &out)
    }

    /// Accepts request `id`'s result for `shard` once the answers allow: the owner's alone for
    /// an unverified unit; for a verified one the owner's and the checker's, byte-identical; in
    /// a dispute the referee's sides with one of them and the other is dropped.
    mutating func resolve(_ id: RequestID, shard s: Int, into out: inout [CoordinatorDirective]) {
        guard let request = requests[id], request.results[s] == nil, let owner = shards[s].owner,
              let own = request.answers[s]?[owner.peer] else { return }
        guard request.checked.contains(s) else { accept(id, shard: s, own, into: &out); return }
        guard let checker = shards[s].checker else {
            if !warnedUnchecked {
                warnedUnchecked = true
                out.append(.log("--verify: shard \(s) has no second worker (\(workers.count) live); its verified units are accepted unchecked until one joins"))
            }
            accept(id, shard: s, own, into: &out)
            return
        }
        guard let chk = request.answers[s]?[checker.peer] else { return }
        if ResultCheck.identical(own, chk) { accept(id, shard: s, own, into: &out); return }
        if !request.disputed.contains(s) {
            requests[id]!.disputed.insert(s)
            out.append(.log("--verify: request \(id) shard \(s): owner \(owner.peer) and checker \(checker.peer) returned different results; a third worker decides"))
            placeVacancies(into: &out)
            if phase == .aborted { return }
            dispatch(id, shard: s, into: &out)
            return
        }
        guard let referee = shards[s].referee, let ref = request.answers[s]?[referee.peer] else { return }
        let minority: PeerID, agreed: WorkResult
        if ResultCheck.identical(ref, own) { minority = checker.peer; agreed = own } else if ResultCheck.identical(ref, chk) {
            minority = owner.peer; agreed = chk
        } else {
            phase = .aborted
            out.append(.abort("--verify: owner \(owner.peer), checker \(checker.peer) and referee \(referee.peer) returned three different results for request \(id) shard \(s)"))
            return
        }
        accept(id, shard: s, agreed, into: &out)
        fail([minority], "returned a result that two other workers contradict (request \(id), shard \(s), --verify)", charged: false, into: &out)
    }

    /// Stores `value` as request `id`'s result for `shard`; completes the request when every target shard has one.
    mutating func accept(_ id: RequestID, shard s: Int, _ value: WorkResult, into out: inout [CoordinatorDirective]) {
        guard var request = requests[id] else { return }
        request.results[s] = value
        request.answers[s] = nil
        request.disputed.remove(s)
        for p in Array(workers.keys) { workers[p]!.tasksOut.remove(TaskKey(request: id, shard: s)) }
        guard request.targets.allSatisfy({ request.results[$0] != nil }) else { requests[id] = request; return }
        let perShard = request.targets.sorted().map { request.results[$0]! }
        requests[id] = nil
        guard let reduced = Reduction.reduce(perShard, for: request.unit) else {
            phase = .aborted
            out.append(.abort("request \(id) (op \(request.unit.op)): the accepted results do not reduce"))
            return
        }
        out.append(.complete(Completion(request: id, unit: request.unit, perShard: perShard, reduced: reduced)))
        finishIfDone(into: &out)
    }

    // MARK: failures

    /// A protocol violation: tell the peer, then drop it like a dead worker.
    mutating func violation(_ peer: PeerID, _ reason: String, into out: inout [CoordinatorDirective]) {
        send(.error(code: .malformed, message: reason), to: peer, into: &out)
        if workers[peer] != nil { fail([peer], reason, into: &out) } else {
            out.append(.log("\(peer): \(reason), dropped"))
            out.append(.drop(peer, reason: reason))
        }
    }

    /// Drops `peers` (all at once: none of them is given the others' shards) and fills the
    /// roles they held, shard by shard: the checker becomes the owner and the referee the
    /// checker; an orphan shard goes to the least-loaded live worker (``candidate(for:)``), which
    /// must run stage 1 for it again; its outstanding tasks follow on READY.
    mutating func fail(_ peers: [PeerID], _ reason: String, charged: Bool = true, into out: inout [CoordinatorDirective]) {
        fail(peers.map { ($0, reason) }, charged: charged, into: &out)
    }

    /// Drops every peer of `drops` with its own reason, all at once (see ``fail(_:_:charged:into:)``).
    mutating func fail(_ drops: [(PeerID, String)], charged: Bool = true, into out: inout [CoordinatorDirective]) {
        let dropped = drops.filter { workers.removeValue(forKey: $0.0) != nil }
        guard !dropped.isEmpty else { return }
        for (peer, reason) in dropped {
            out.append(.log("\(peer): \(reason), dropped"))
            out.append(.drop(peer, reason: reason))
        }
        let gone = dropped.map(\.0)
        let goneSet = Set(gone)
        for id in Array(requests.keys) {
            for s in Array(requests[id]!.answers.keys) { for p in gone { requests[id]!.answers[s]?[p] = nil } }
        }
        var affected: [Int] = []
        for s in shards.indices {
            var formerOwner: PeerID?, touched = false
            for role in Role.allCases {
                guard let h = shards[s][role], goneSet.contains(h.peer) else { continue }
                shards[s][role] = nil
                touched = true
                if role == .owner { formerOwner = h.peer }
            }
            guard touched else { continue }
            shards[s].moves += 1
            if charged { shards[s].charged += 1 }
            if shards[s].charged > settings.maxAttempts {
                phase = .aborted
                out.append(.abort("shard \(s) was reassigned \(shards[s].charged) times"))
                return
            }
            affected.append(s)
            for id in Array(requests.keys) { requests[id]!.disputed.remove(s) }
            // The remaining holders move up: checker → owner, referee → checker.
            let remaining = Role.allCases.compactMap { shards[s][$0] }
            for (i, role) in Role.allCases.enumerated() { shards[s][role] = i < remaining.count ? remaining[i] : nil }
            if let from = formerOwner, let promoted = shards[s].owner {
                out.append(.reassign(shard: s, from: from, to: promoted.peer, attempt: promoted.attempt))
                out.append(.assign(shard: s, to: promoted.peer, attempt: promoted.attempt))
            }
            if shards[s].owner == nil, let from = formerOwner {
                let to = candidate(for: s)
                out.append(.reassign(shard: s, from: from, to: to, attempt: shards[s].nextAttempt))
                if let to { give(s, .owner, to: to, into: &out) }
            }
        }
        for id in requests.keys.sorted() {
            for s in affected {
                resolve(id, shard: s, into: &out)
                dispatch(id, shard: s, into: &out)
                if phase == .aborted { return }
            }
        }
    }
}
