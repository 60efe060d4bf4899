import VitqDistributed
import VitqQuant
import XCTest

/// The malicious-worker harness (issue 16): a worker that lies in each way a shard owner can,
/// joined with honest workers through the real ``CoordinatorState``. The run must complete
/// with the honest results, the liar must be dropped with a log line naming it and the field,
/// and the coordinator never aborts while an honest worker remains.
final class MaliciousWorkerTests: XCTestCase {
    let liar = PeerID("liar"), honest = PeerID("honest"), second = PeerID("honest2")

    func assertHonest(_ c: Cluster, _ done: [RequestID: Completion], _ message: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(done.count, Cluster.units.count, "\(message): every unit completes\n\(c.d.log.logs.joined(separator: "\n"))", file: file, line: line)
        for completion in done.values {
            XCTAssertEqual(completion.reduced, c.expected(completion.unit), "\(message): \(completion.unit.op)", file: file, line: line)
        }
        XCTAssertTrue(c.aborts.isEmpty, "\(message): \(c.aborts)", file: file, line: line)
    }

    /// Each shape or value lie, from the worker owning shard 0 (so its RESULT is the first of
    /// its request, which the old check took as the reference).
    func testEveryShapeAndValueLieIsRefusedAndTheRunCompletesWithTheHonestResults() {
        for lie in Lie.refusedByChecks {
            var c = Cluster(Fx.settings(shards: 4, workers: 2))
            c.join(liar, lie: lie)
            c.join(honest)
            let done = c.run()
            assertHonest(c, done, "\(lie)")
            XCTAssertEqual(c.d.state.liveWorkers, [honest], "\(lie)")
            XCTAssertEqual(c.d.log.drops, [liar], "only the liar is dropped (\(lie))")
            let line = c.d.log.logs.first { $0.hasPrefix("liar: RESULT") } ?? ""
            XCTAssertTrue(line.contains("field '"), "\(lie): the log names the field: \(c.d.log.logs)")
            XCTAssertTrue(c.d.log.sent(to: liar).contains { if case .error(.malformed, _) = $0 { return true }; return false }, "\(lie)")
        }
    }

    func testEachRefusalNamesTheRightField() {
        let fields: [Lie: String] = [.noRanges: "count", .oneMatmulRange: "count", .zeroChannels: "channels", .fewerCandidates: "candidates",
                                     .nanScore: "scores", .infiniteRange: "ranges", .negativeRange: "ranges", .negativeRows: "rows",
                                     .nanOutputError: "sums"]
        for (lie, field) in fields {
            var c = Cluster(Fx.settings(shards: 2, workers: 2))
            c.join(liar, lie: lie)
            c.join(honest)
            c.run()
            XCTAssertTrue(c.d.log.logs.contains { $0.hasPrefix("liar: RESULT") && $0.contains("field '\(field)'") }, "\(lie): \(c.d.log.logs)")
        }
    }

    func testAWorkerThatHeartbeatsButNeverReportsReadyIsDroppedAtTheStageOneDeadline() {
        var c = Cluster(Fx.settings(shards: 4, workers: 2))
        c.join(honest)
        c.join(liar, lie: .neverReady)
        let done = c.run(seconds: 700)
        assertHonest(c, done, "neverReady")
        XCTAssertEqual(c.d.log.drops, [liar])
        let line = c.d.log.logs.first { $0.hasPrefix("liar:") } ?? ""
        XCTAssertTrue(line.contains("made no progress") && line.contains("first stage-1 limit is 600.0 s"), line)
        // A first stage 1 (which includes loading the JOB) gets the unmeasured limit, 20 floors,
        // whatever the honest worker's stage 1 took; dropped then, not before.
        XCTAssertGreaterThan(c.d.clock.now, 600)
        XCTAssertLessThan(c.d.clock.now, 602)
    }

    func testAWorkerHoldingATaskPastTheMeasuredLimitIsDropped() {
        var s = Fx.settings(shards: 2, workers: 2)
        s.deadlines = Deadlines(factor: 8, stageOneFloor: 1, taskFloor: 1)
        var d = Driver(s)
        let a = Fx.peers[0], b = Fx.peers[1]
        d.join([a, b])
        d.readyAll()
        // Three units answered after 2 s each: the TASK limit becomes 8 × 2 s.
        for _ in 0..<3 {
            let tasks = d.submit(.ranges(op: "x")).1.tasks
            d.clock.advance(2)
            d.beat()
            for (t, p) in tasks { d.receive(.result(WorkReply(request: t.request, shard: t.shard, attempt: t.attempt, result: .ranges([1]))), from: p) }
            d.tick()
        }
        XCTAssertEqual(d.state.taskLimit(for: .ranges(op: "x")), 16, accuracy: 1e-9)
        let tasks = d.submit(.ranges(op: "x")).1.tasks
        for _ in 0..<8 { d.clock.advance(0.25); d.beat(); d.tick() }    // 2 s
        let a0 = tasks.first { $0.1 == a }!.0
        d.receive(.result(WorkReply(request: a0.request, shard: a0.shard, attempt: a0.attempt, result: .ranges([1]))), from: a)
        for _ in 0..<52 { d.clock.advance(0.25); d.beat(); d.tick() }   // 15 s: within the limit
        XCTAssertEqual(d.state.liveWorkers, [a, b])
        for _ in 0..<8 { d.clock.advance(0.25); d.beat(); d.tick() }    // 17 s
        XCTAssertEqual(d.state.liveWorkers, [a], "b held its TASK past 16 s")
        XCTAssertTrue(d.log.logs.contains { $0.hasPrefix("w1: made no progress") && $0.contains("TASK limit is 16.0 s") }, "\(d.log.logs)")
        XCTAssertEqual(d.state.owner(of: 1), a)
    }

    func testTheUnmeasuredLimitIsTwentyFloors() {
        let d = Driver(Fx.settings())
        XCTAssertEqual(d.state.stageOneLimit, 600)
        XCTAssertEqual(d.state.taskLimit(for: .ranges(op: "x")), 200)
    }

    /// 30 silent peers hold shards and go stale in the same tick, while one healthy worker is
    /// connected: every shard moves once, to the healthy worker, and the run completes.
    func testThirtySilentPeersGoingStaleTogetherDoNotBurnTheAttemptBudget() {
        var c = Cluster(Fx.settings(shards: 40, workers: 31))
        for i in 0..<30 { c.join(PeerID("silent\(i)"), lie: .silent) }
        c.join(honest)
        let done = c.run()
        assertHonest(c, done, "30 silent")
        XCTAssertEqual(c.d.state.liveWorkers, [honest])
        XCTAssertEqual(c.d.state.shards(of: honest), Array(0..<40))
        XCTAssertEqual((0..<40).map { c.d.state.moves(of: $0) }.max(), 1, "each shard moved once")
    }

    /// Silent peers joining one by one are never given the shards of a worker that died.
    func testSilentPeersJoiningOneByOneAreNeverGivenShards() {
        var c = Cluster(Fx.settings(shards: 4, workers: 2))
        c.join(PeerID("silent"), lie: .silent)
        c.join(honest)
        for i in 0..<30 { c.join(PeerID("late\(i)"), lie: .silent); c.step() }
        let done = c.run()
        assertHonest(c, done, "silent joiners")
        XCTAssertEqual(c.d.state.shards(of: honest), [0, 1, 2, 3])
        XCTAssertEqual((0..<4).map { c.d.state.moves(of: $0) }.max(), 1)
    }

    // MARK: --verify

    func testVerifyCatchesAPlausibleValueLieAndDropsTheMinority() {
        var c = Cluster(Fx.settings(shards: 4, workers: 3, verify: 1))
        c.join(honest)
        c.join(liar, lie: .plausibleValues)
        c.join(second)
        let done = c.run()
        assertHonest(c, done, "plausible values with --verify 1")
        XCTAssertEqual(c.d.log.drops, [liar])
        XCTAssertTrue(c.d.log.logs.contains { $0.hasPrefix("liar: returned a result that two other workers contradict") }, "\(c.d.log.logs)")
        XCTAssertTrue(c.d.log.logs.contains { $0.contains("a third worker decides") })
        XCTAssertEqual(Set(c.d.state.liveWorkers), [honest, second])
        for s in 0..<4 { XCTAssertNotEqual(c.d.state.owner(of: s), c.d.state.checker(of: s)) }
    }

    /// A value liar that comes back under a new id after each drop (as `vitq worker` reconnects)
    /// keeps being outvoted; its drops do not count against the attempt budget, so it cannot abort the run.
    func testAValueLiarThatReconnectsAfterEachDropCannotAbortAVerifiedRun() {
        var c = Cluster(Fx.settings(shards: 4, workers: 3, verify: 1))
        c.reconnects = 20
        c.join(honest)
        c.join(liar, lie: .plausibleValues)
        c.join(second)
        for _ in 0..<40 { c.step() }
        let done = c.run()
        assertHonest(c, done, "reconnecting liar")
        XCTAssertGreaterThan(c.incarnations, 0)
        XCTAssertTrue(c.d.log.drops.allSatisfy { $0.id.hasPrefix("liar") }, "\(c.d.log.drops)")
    }

    /// Without --verify a plausible lie of the right shape is accepted: the trust model's limit.
    func testWithoutVerifyAPlausibleValueLieGoesThrough() {
        var c = Cluster(Fx.settings(shards: 4, workers: 2))
        c.join(honest)
        c.join(liar, lie: .plausibleValues)
        let done = c.run()
        XCTAssertEqual(done.count, Cluster.units.count)
        XCTAssertTrue(done.values.contains { $0.reduced != c.expected($0.unit) })
    }

    func testAMismatchWithoutAThirdWorkerStopsWithAClearError() {
        var c = Cluster(Fx.settings(shards: 2, workers: 2, verify: 1))
        c.join(honest)
        c.join(liar, lie: .plausibleValues)
        c.run()
        XCTAssertEqual(c.d.state.phase, .aborted)
        XCTAssertTrue(c.aborts.first?.contains("no third worker is connected to decide") ?? false, "\(c.aborts)")
    }

    func testHonestWorkersAgreeUnderVerifyAndNobodyIsDropped() {
        var c = Cluster(Fx.settings(shards: 4, workers: 2, verify: 1))
        c.join(honest)
        c.join(second)
        let done = c.run()
        assertHonest(c, done, "honest pair")
        XCTAssertTrue(c.d.log.drops.isEmpty)
        // Every unit went to both holders of each shard.
        XCTAssertEqual(c.d.log.tasks.count, 2 * 4 * Cluster.units.count)
    }

    func testTheVerifiedFractionIsSeeded() {
        var d = Driver(Fx.settings(shards: 8, workers: 3, verify: 0.25))
        d.join(Array(Fx.peers[0..<3]))
        var verified = 0
        for _ in 0..<100 { let id = d.submit(.ranges(op: "x")).0; verified += d.state.verified(id).count }
        XCTAssertGreaterThan(verified, 150)
        XCTAssertLessThan(verified, 250)
        XCTAssertEqual((1...100).map { r in (0..<8).filter { CoordinatorState.sampled(seed: 1, request: r, shard: $0, fraction: 0.25) } },
                       (1...100).map { r in (0..<8).filter { CoordinatorState.sampled(seed: 1, request: r, shard: $0, fraction: 0.25) } })
        XCTAssertNotEqual((1...100).map { r in (0..<8).filter { CoordinatorState.sampled(seed: 1, request: r, shard: $0, fraction: 0.25) } },
                          (1...100).map { r in (0..<8).filter { CoordinatorState.sampled(seed: 2, request: r, shard: $0, fraction: 0.25) } })
        for s in 0..<8 { XCTAssertNotNil(d.state.checker(of: s)); XCTAssertNotEqual(d.state.checker(of: s), d.state.owner(of: s)) }
    }

    func testACheckerThatDiesIsReplacedAndTheOwnerOfADeadWorkersShardIsItsChecker() {
        var c = Cluster(Fx.settings(shards: 3, workers: 3, verify: 1))
        c.join(honest); c.join(second); c.join(liar, lie: .silent)
        let done = c.run()
        assertHonest(c, done, "silent third")
        XCTAssertEqual(Set(c.d.state.liveWorkers), [honest, second])
        for s in 0..<3 {
            XCTAssertNotNil(c.d.state.owner(of: s)); XCTAssertNotNil(c.d.state.checker(of: s))
            XCTAssertNotEqual(c.d.state.owner(of: s), c.d.state.checker(of: s))
        }
    }
}
