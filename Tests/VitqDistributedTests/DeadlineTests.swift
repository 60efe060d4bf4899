import VitqDistributed
import VitqQuant
import XCTest

/// Deadline, simultaneous-failure and dispute fixes of issue 16's review, on the real
/// ``CoordinatorState`` with a manual clock and simulated workers (``Cluster``).
final class DeadlineTests: XCTestCase {
    let honest = PeerID("honest")

    /// Several workers heartbeat but never report READY and miss the stage-1 deadline in the
    /// same tick: they are dropped together, so no stalled worker is given another's shards,
    /// every shard moves once (to the honest worker), and even a budget of one move suffices.
    func testWorkersThatStallInTheSameTickAreDroppedTogether() {
        var s = Fx.settings(shards: 7, workers: 7)
        s.maxAttempts = 1
        var c = Cluster(s)
        for i in 0..<6 { c.join(PeerID("stall\(i)"), lie: .neverReady) }
        c.join(honest)
        let done = c.run(seconds: 1000)
        XCTAssertTrue(c.aborts.isEmpty, "\(c.aborts)\n\(c.d.log.logs.joined(separator: "\n"))")
        XCTAssertEqual(done.count, Cluster.units.count)
        XCTAssertEqual(c.d.state.liveWorkers, [honest])
        XCTAssertEqual((0..<7).map { c.d.state.moves(of: $0) }.max(), 1, "each shard moved once")
    }

    /// Advances `seconds` in quarter seconds, with heartbeats from every live worker and ticks.
    func wait(_ d: inout Driver, _ seconds: Double) { for _ in 0..<Int(seconds * 4) { d.clock.advance(0.25); d.beat(); d.tick() } }

    /// Many cheap `ranges` units first, then a `score` unit that takes 60 s: the score TASK is
    /// held to its own kind's limit (unmeasured: 200 s), not to 8 × the ranges' time.
    func testASlowScoreTaskAfterCheapRangesUnitsIsNotDropped() {
        var d = Driver(Fx.settings(shards: 2, workers: 2))
        let a = Fx.peers[0], b = Fx.peers[1]
        d.join([a, b])
        d.readyAll()
        for _ in 0..<20 {
            let tasks = d.submit(.ranges(op: "x")).1.tasks
            d.clock.advance(0.25)
            for (t, p) in tasks { d.receive(.result(WorkReply(request: t.request, shard: t.shard, attempt: t.attempt, result: Cluster.honest(t.unit, shard: t.shard))), from: p) }
        }
        let unit = WorkUnit.score(Fx.searchTask())
        let tasks = d.submit(unit).1.tasks
        wait(&d, 60)
        XCTAssertEqual(d.state.liveWorkers, [a, b], "\(d.log.logs)")
        for (t, p) in tasks { d.receive(.result(WorkReply(request: t.request, shard: t.shard, attempt: t.attempt, result: Cluster.honest(t.unit, shard: t.shard))), from: p) }
        XCTAssertEqual(d.log.completions.count, 21)
        XCTAssertEqual(d.state.taskLimit(for: .ranges(op: "x")), 10, "ranges keep their own (floor) limit")
        XCTAssertEqual(d.state.taskLimit(for: unit), 480, "8 × the slowest score unit (60 s)")
    }

    /// A local worker is READY after 3 s; a remote one, still receiving a large inline JOB, only
    /// after 100 s: its first stage 1 is not judged against the local worker's.
    func testARemoteWorkersFirstStageOneIsNotJudgedAgainstALocalOne() {
        var d = Driver(Fx.settings(shards: 2, workers: 2))
        let local = Fx.peers[0], remote = Fx.peers[1]
        d.join([local, remote])
        wait(&d, 3)
        d.receive(.ready(shard: 0, attempt: d.state.attempt(of: 0)), from: local)
        wait(&d, 97)
        XCTAssertEqual(d.state.liveWorkers, [local, remote], "\(d.log.logs)")
        d.receive(.ready(shard: 1, attempt: d.state.attempt(of: 1)), from: remote)
        XCTAssertTrue(d.state.isReady(1))
        XCTAssertEqual(d.state.stageOneLimit, 800, "8 × the slowest stage 1 (100 s)")
    }

    /// A worker that misses a deadline is dropped and that kind's limit doubles, so a replacement
    /// as slow as it gets twice the time: honest slow workers cannot exhaust the attempt budget.
    func testAMissedDeadlineDoublesTheLimitOfThatKind() {
        var s = Fx.settings(shards: 1, workers: 1)
        s.deadlines = Deadlines(stageOneFloor: 1, taskFloor: 1, unmeasuredFactor: 1)
        s.maxAttempts = 2
        var d = Driver(s)
        let a = Fx.peers[0], b = Fx.peers[1], c = Fx.peers[2]
        d.join([a, b, c])
        d.readyAll()
        XCTAssertEqual(d.state.taskLimit(for: .ranges(op: "x")), 1)
        d.submit(.ranges(op: "x"))
        wait(&d, 1.5)
        XCTAssertFalse(d.state.liveWorkers.contains(a), "a held its TASK past 1 s")
        XCTAssertEqual(d.state.taskLimit(for: .ranges(op: "x")), 2)
        XCTAssertEqual(d.state.phase, .running)
    }

    /// A value liar and an honest worker disagree under `--verify 1`; the only other connected
    /// peer said HELLO and nothing since, so it is never eligible to referee and is dropped as
    /// silent: the run aborts with a clear message instead of waiting for ever.
    func testADisputeWithOnlyASilentThirdPeerEndsTheRun() {
        var c = Cluster(Fx.settings(shards: 2, workers: 2, verify: 1))
        c.join(honest)
        c.join(PeerID("liar"), lie: .plausibleValues)
        c.join(PeerID("silent"), lie: .silent)
        c.run(seconds: 60)
        XCTAssertEqual(c.d.state.phase, .aborted, "\(c.d.log.logs.joined(separator: "\n"))")
        XCTAssertTrue(c.aborts.first.map { $0.contains("disagree") && $0.contains("third worker") } ?? false, "\(c.aborts)")
        XCTAssertLessThan(c.d.clock.now, 10)
    }

    /// The same dispute, but a real referee joins while it waits: the run completes with the
    /// honest results and the liar is dropped.
    func testADisputeIsSettledByAWorkerThatJoinsLater() {
        var c = Cluster(Fx.settings(shards: 2, workers: 2, verify: 1))
        c.join(honest)
        c.join(PeerID("liar"), lie: .plausibleValues)
        c.join(PeerID("silent"), lie: .silent)
        let ids = Cluster.units.map { u -> RequestID in let (id, out) = c.d.submit(u); c.collect(out); return id }
        c.deliver()
        c.step()
        c.join(PeerID("referee"))
        for _ in 0..<400 where c.d.state.phase == .running { c.step() }
        XCTAssertTrue(c.aborts.isEmpty, "\(c.aborts)")
        XCTAssertEqual(Set(c.d.log.completions.map(\.request)), Set(ids))
        for done in c.d.log.completions { XCTAssertEqual(done.reduced, c.expected(done.unit)) }
        XCTAssertTrue(c.d.log.drops.contains(PeerID("liar")))
    }
}
