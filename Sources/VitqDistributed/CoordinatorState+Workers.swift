/// Joining, readiness, results and failures of workers.
extension CoordinatorState {
    // MARK: join

    mutating func join(_ peer: PeerID, _ hello: Hello, into out: inout [CoordinatorDirective]) {
        guard let version = ProtocolVersion.negotiate(ours: settings.versions, theirs: hello.versions) else {
            let text = "coordinator speaks \(settings.versions), worker speaks \(hello.versions)"
            out.append(.log("\(peer) (\(hello.name)): no common protocol version: \(text)"))
            out.append(.send(.error(code: .version, message: text), to: peer))
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
            for s in shards.indices { give(s, to: live[s % live.count], into: &out) }
        } else if phase == .running {
            for s in shards.indices where shards[s].owner == nil { give(s, to: leastLoaded()!, into: &out) }
        }
    }

    /// The live worker owning the fewest shards (ties: the earliest joined).
    func leastLoaded() -> PeerID? {
        var load: [PeerID: Int] = [:]
        for s in shards { if let o = s.owner { load[o, default: 0] += 1 } }
        return liveWorkers.min { load[$0, default: 0] < load[$1, default: 0] }
    }

    mutating func give(_ shard: Int, to peer: PeerID, into out: inout [CoordinatorDirective]) {
        shards[shard].owner = peer
        shards[shard].ready = false
        out.append(.assign(shard: shard, to: peer, attempt: shards[shard].attempt))
        send(.assign(shard: shard, attempt: shards[shard].attempt), to: peer, into: &out)
    }

    // MARK: stage 1 and results

    mutating func ready(_ peer: PeerID, shard: Int, attempt: Int, into out: inout [CoordinatorDirective]) {
        guard shard >= 0, shard < shards.count else { violation(peer, "READY for shard \(shard) of \(shards.count)", into: &out); return }
        guard shards[shard].owner == peer, shards[shard].attempt == attempt, !shards[shard].ready else {
            out.append(.log("\(peer): stale or duplicate READY for shard \(shard) attempt \(attempt), ignored"))
            return
        }
        shards[shard].ready = true
        for id in requests.keys.sorted() where requests[id]!.results[shard] == nil { sendTask(id, shard: shard, into: &out) }
    }

    mutating func sendTask(_ id: RequestID, shard: Int, into out: inout [CoordinatorDirective]) {
        guard let owner = shards[shard].owner, let unit = requests[id]?.unit else { return }
        send(.task(WorkTask(request: id, shard: shard, attempt: shards[shard].attempt, unit: unit)), to: owner, into: &out)
    }

    mutating func result(_ peer: PeerID, _ r: WorkReply, into out: inout [CoordinatorDirective]) {
        guard r.shard >= 0, r.shard < shards.count else { violation(peer, "RESULT for shard \(r.shard) of \(shards.count)", into: &out); return }
        guard let request = requests[r.request], shards[r.shard].owner == peer, shards[r.shard].attempt == r.attempt,
              shards[r.shard].ready, request.results[r.shard] == nil else {
            out.append(.log("\(peer): late or duplicate RESULT (request \(r.request), shard \(r.shard), attempt \(r.attempt)), ignored"))
            return
        }
        guard Reduction.fits(r.result, request.unit, like: request.results.lazy.compactMap { $0 }.first) else {
            violation(peer, "RESULT of the wrong kind or shape for request \(r.request)", into: &out)
            return
        }
        requests[r.request]!.results[r.shard] = r.result
        let results = requests[r.request]!.results
        guard results.allSatisfy({ $0 != nil }) else { return }
        let perShard = results.map { $0! }
        requests[r.request] = nil
        out.append(.complete(Completion(request: r.request, unit: request.unit, perShard: perShard,
                                        reduced: Reduction.reduce(perShard, for: request.unit)!)))
        finishIfDone(into: &out)
    }

    // MARK: failures

    /// A protocol violation: tell the peer, then drop it like a dead worker.
    mutating func violation(_ peer: PeerID, _ reason: String, into out: inout [CoordinatorDirective]) {
        send(.error(code: .malformed, message: reason), to: peer, into: &out)
        if workers[peer] != nil { fail(peer, reason, into: &out) } else {
            out.append(.log("\(peer): \(reason), dropped"))
            out.append(.drop(peer, reason: reason))
        }
    }

    /// Drops `peer` and moves its shards, in shard order, to the least-loaded live workers,
    /// which must run stage 1 for them again; their outstanding tasks follow on READY.
    mutating func fail(_ peer: PeerID, _ reason: String, into out: inout [CoordinatorDirective]) {
        guard workers.removeValue(forKey: peer) != nil else { return }
        out.append(.log("\(peer): \(reason), dropped"))
        out.append(.drop(peer, reason: reason))
        for s in shards.indices where shards[s].owner == peer {
            shards[s].attempt += 1
            shards[s].owner = nil
            shards[s].ready = false
            if shards[s].attempt > settings.maxAttempts {
                phase = .aborted
                out.append(.abort("shard \(s) was reassigned \(shards[s].attempt) times"))
                return
            }
            let to = leastLoaded()
            out.append(.reassign(shard: s, from: peer, to: to, attempt: shards[s].attempt))
            if let to { give(s, to: to, into: &out) }
        }
    }
}
