import VitqDistributed
import VitqQuant
import XCTest

/// Heartbeats, dead workers and reassignment (PROTOCOL.md §4).
final class FailureTests: XCTestCase {
    let a = Fx.peers[0], b = Fx.peers[1], c = Fx.peers[2]

    func running(shards: Int = 4, workers: Int = 2) -> Driver {
        var d = Driver(Fx.settings(shards: shards, workers: workers))
        d.join(Array(Fx.peers[0..<workers]))
        d.readyAll()
        return d
    }

    func testHeartbeatsAreSentEveryInterval() {
        var d = running()
        XCTAssertTrue(d.tick(after: 0.5).isEmpty)
        XCTAssertEqual(d.tick(after: 0.5).filter { if case .send(.heartbeat, _) = $0 { return true }; return false }.count, 2)
    }

    func testAWorkerMissingThreeHeartbeatsIsDead() {
        var d = running()
        d.tick(after: 1); d.receive(.heartbeat, from: a)
        d.tick(after: 1); d.receive(.heartbeat, from: a)
        XCTAssertTrue(d.tick(after: 0.9).drops.isEmpty)
        XCTAssertEqual(d.tick(after: 0.1).drops, [b])
        XCTAssertEqual(d.state.liveWorkers, [a])
    }

    func testAnyMessageCountsAsLife() {
        var d = running(shards: 1, workers: 1)
        d.tick(after: 2.5)
        d.receive(.ready(shard: 0, attempt: 0), from: a)
        XCTAssertTrue(d.tick(after: 2.5).drops.isEmpty)
    }

    func testDeadWorkersShardsMoveToALiveWorkerThatMustReCollect() {
        var d = running()
        d.beat()
        d.tick(after: 3)
        XCTAssertEqual(d.state.liveWorkers, [])
        // A spare joins: every orphan shard goes to it, at attempt 1, not yet ready.
        var e = running(shards: 4, workers: 2)
        e.join([c])
        e.clock.advance(2); e.receive(.heartbeat, from: a); e.receive(.heartbeat, from: c)
        let out = e.tick(after: 1)
        XCTAssertEqual(out.drops, [b])
        XCTAssertTrue(out.contains(.reassign(shard: 1, from: b, to: c, attempt: 1)))
        XCTAssertTrue(out.contains(.reassign(shard: 3, from: b, to: c, attempt: 1)))
        XCTAssertEqual(out.sent(to: c), [.assign(shard: 1, attempt: 1), .assign(shard: 3, attempt: 1)])
        XCTAssertFalse(e.state.isReady(1))
        XCTAssertEqual(e.state.shards(of: a), [0, 2])
    }

    func testReassignedShardBalancesAcrossLiveWorkers() {
        var d = running(shards: 6, workers: 3)
        let out = d.receive(.bye(.leaving, reason: "shutdown"), from: a)
        XCTAssertEqual(out.drops, [a])
        XCTAssertEqual(d.state.owner(of: 0), b)
        XCTAssertEqual(d.state.owner(of: 3), c)
    }

    func testOutstandingUnitsFollowTheShardOnceReCollected() {
        var d = running(shards: 2, workers: 2)
        let tasks = d.submit(.ranges(op: "x")).1.tasks
        d.receive(.result(WorkReply(request: tasks[0].0.request, shard: 0, attempt: 0, result: .ranges([5]))), from: a)
        let moved = d.receive(.error(code: .failed, message: "out of memory"), from: b)
        XCTAssertTrue(moved.tasks.isEmpty, "no task before the new owner re-collects")
        XCTAssertEqual(d.state.owner(of: 1), a)
        let resent = d.receive(.ready(shard: 1, attempt: 1), from: a).tasks
        XCTAssertEqual(resent.map { $0.0 }, [WorkTask(request: tasks[0].0.request, shard: 1, attempt: 1, unit: .ranges(op: "x"))])
        let done = d.receive(.result(WorkReply(request: resent[0].0.request, shard: 1, attempt: 1, result: .ranges([7]))), from: a)
        XCTAssertEqual(done.completions.map(\.reduced), [.ranges([7])])
    }

    func testLateResultFromADeadWorkerIsIgnored() {
        var d = running(shards: 2, workers: 2)
        d.join([c])
        d.receive(.heartbeat, from: c)
        let tasks = d.submit(.ranges(op: "x")).1.tasks
        d.receive(.bye(.leaving, reason: "gone"), from: b)
        let late = d.receive(.result(WorkReply(request: tasks[1].0.request, shard: 1, attempt: 0, result: .ranges([666]))), from: b)
        XCTAssertTrue(late.completions.isEmpty)
        XCTAssertEqual(late.drops, [b], "an unknown peer now")
        // Even if the old owner came back under the same id, attempt 0 is stale.
        d.join([b])
        let stale = d.receive(.result(WorkReply(request: tasks[1].0.request, shard: 1, attempt: 0, result: .ranges([666]))), from: b)
        XCTAssertTrue(stale.completions.isEmpty)
        d.receive(.ready(shard: 1, attempt: 1), from: c)
        d.receive(.result(WorkReply(request: tasks[0].0.request, shard: 0, attempt: 0, result: .ranges([1]))), from: a)
        d.receive(.result(WorkReply(request: tasks[1].0.request, shard: 1, attempt: 1, result: .ranges([2]))), from: c)
        XCTAssertEqual(d.log.completions.map(\.reduced), [.ranges([2])])
    }

    func testOrphanShardsWaitForTheNextWorker() {
        var d = running(shards: 2, workers: 1)
        let out = d.receive(.bye(.leaving, reason: "gone"), from: a)
        XCTAssertTrue(out.contains(.reassign(shard: 0, from: a, to: nil, attempt: 1)))
        d.join([b])
        XCTAssertEqual(d.state.shards(of: b), [], "a worker is given shards once it speaks after its HELLO")
        d.receive(.heartbeat, from: b)
        XCTAssertEqual(d.state.shards(of: b), [0, 1])
        XCTAssertEqual(d.state.attempt(of: 1), 1)
    }

    func testTooManyAttemptsAbort() {
        var s = Fx.settings(shards: 1, workers: 1)
        s.maxAttempts = 2
        var d = Driver(s)
        for p in Fx.peers[0..<2] { d.join([p]); d.receive(.heartbeat, from: p); d.receive(.bye(.leaving, reason: "crash"), from: p) }
        d.join([Fx.peers[2]])
        d.receive(.heartbeat, from: Fx.peers[2])
        let out = d.receive(.bye(.leaving, reason: "crash"), from: Fx.peers[2])
        XCTAssertTrue(out.contains { if case .abort = $0 { return true }; return false })
        XCTAssertEqual(d.state.phase, .aborted)
    }

    func testSecondHelloRestartsTheWorker() {
        var d = running(shards: 2, workers: 1)
        d.receive(.hello(Hello(name: "again")), from: a)
        d.receive(.heartbeat, from: a)
        XCTAssertEqual(d.state.owner(of: 0), a)
        XCTAssertEqual(d.state.attempt(of: 0), 1)
        XCTAssertFalse(d.state.isReady(0))
    }
}
