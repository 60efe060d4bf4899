import VitqDistributed
import XCTest

/// Joining and shard assignment: balanced, deterministic, by join order; stage-1 readiness.
final class AssignmentTests: XCTestCase {
    func testNothingIsAssignedBeforeTheExpectedWorkersJoin() {
        var d = Driver(Fx.settings(shards: 4, workers: 3))
        d.join(Array(Fx.peers[0..<2]))
        XCTAssertEqual(d.state.phase, .waiting)
        XCTAssertNil(d.state.owner(of: 0))
    }

    func testShardIGoesToWorkerIModuloCountByJoinOrder() {
        var d = Driver(Fx.settings(shards: 5, workers: 2))
        d.join([Fx.peers[3], Fx.peers[1]])
        XCTAssertEqual(d.state.phase, .running)
        XCTAssertEqual((0..<5).map { d.state.owner(of: $0) }, [Fx.peers[3], Fx.peers[1], Fx.peers[3], Fx.peers[1], Fx.peers[3]])
        XCTAssertEqual(d.log.sent(to: Fx.peers[1]), [.job(Fx.job(shards: 5), blobs: []), .assign(shard: 1, attempt: 0), .assign(shard: 3, attempt: 0)])
        XCTAssertTrue(d.log.contains(.assign(shard: 4, to: Fx.peers[3], attempt: 0)))
    }

    func testMoreWorkersThanShardsLeavesSpares() {
        var d = Driver(Fx.settings(shards: 2, workers: 3))
        d.join(Array(Fx.peers[0..<3]))
        XCTAssertEqual(d.state.shards(of: Fx.peers[2]), [])
        XCTAssertEqual(d.state.shards(of: Fx.peers[0]), [0])
    }

    func testLateJoinerIsASpare() {
        var d = Driver(Fx.settings(shards: 2, workers: 1))
        d.join([Fx.peers[0], Fx.peers[1]])
        XCTAssertEqual(d.state.shards(of: Fx.peers[0]), [0, 1])
        XCTAssertEqual(d.state.shards(of: Fx.peers[1]), [])
        XCTAssertEqual(d.state.liveWorkers, [Fx.peers[0], Fx.peers[1]])
    }

    func testReadyMarksStageOneDone() {
        var d = Driver(Fx.settings(shards: 2, workers: 1))
        d.join([Fx.peers[0]])
        XCTAssertFalse(d.state.isReady(0))
        d.receive(.ready(shard: 0, attempt: 0), from: Fx.peers[0])
        XCTAssertTrue(d.state.isReady(0))
        XCTAssertFalse(d.state.isReady(1))
    }

    func testReadyFromANonOwnerOrWrongAttemptIsIgnored() {
        var d = Driver(Fx.settings(shards: 2, workers: 2))
        d.join(Array(Fx.peers[0..<2]))
        let out = d.receive(.ready(shard: 0, attempt: 0), from: Fx.peers[1])
        XCTAssertFalse(d.state.isReady(0))
        XCTAssertEqual(out.logs.count, 1)
        d.receive(.ready(shard: 0, attempt: 3), from: Fx.peers[0])
        XCTAssertFalse(d.state.isReady(0))
    }

    func testReadyForAShardOutOfRangeDropsThePeer() {
        var d = Driver(Fx.settings(shards: 2, workers: 1))
        d.join([Fx.peers[0]])
        XCTAssertEqual(d.receive(.ready(shard: 9, attempt: 0), from: Fx.peers[0]).drops, [Fx.peers[0]])
    }

    func testAssignmentIsDeterministic() {
        func run() -> [CoordinatorDirective] {
            var d = Driver(Fx.settings(shards: 7, workers: 3))
            d.join(Array(Fx.peers[0..<3]))
            d.readyAll()
            return d.log
        }
        XCTAssertEqual(run(), run())
    }
}
