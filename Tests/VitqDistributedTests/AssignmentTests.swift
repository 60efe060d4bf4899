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

    /// The whole directive log of 3 workers joining for 7 shards, written out by hand: shard i
    /// goes to the (i mod 3)-th worker in join order (not in name order), each at attempt 0,
    /// and READY for every shard adds nothing while no request is outstanding.
    func testAssignmentIsTheFixedRoundRobinOfTheJoinOrder() {
        var d = Driver(Fx.settings(shards: 7, workers: 3))
        let (a, b, c) = (Fx.peers[2], Fx.peers[0], Fx.peers[1])
        d.join([a, b, c])
        d.readyAll()
        let job = Message.job(Fx.job(shards: 7), blobs: [])
        XCTAssertEqual(d.log, [
            .log("w2 (w2) joined, protocol version 3"), .send(job, to: a),
            .log("w0 (w0) joined, protocol version 3"), .send(job, to: b),
            .log("w1 (w1) joined, protocol version 3"), .send(job, to: c),
            .assign(shard: 0, to: a, attempt: 0), .send(.assign(shard: 0, attempt: 0), to: a),
            .assign(shard: 1, to: b, attempt: 0), .send(.assign(shard: 1, attempt: 0), to: b),
            .assign(shard: 2, to: c, attempt: 0), .send(.assign(shard: 2, attempt: 0), to: c),
            .assign(shard: 3, to: a, attempt: 0), .send(.assign(shard: 3, attempt: 0), to: a),
            .assign(shard: 4, to: b, attempt: 0), .send(.assign(shard: 4, attempt: 0), to: b),
            .assign(shard: 5, to: c, attempt: 0), .send(.assign(shard: 5, attempt: 0), to: c),
            .assign(shard: 6, to: a, attempt: 0), .send(.assign(shard: 6, attempt: 0), to: a),
        ])
        XCTAssertEqual(d.state.shards(of: a), [0, 3, 6])
        XCTAssertEqual(d.state.shards(of: b), [1, 4])
        XCTAssertEqual(d.state.shards(of: c), [2, 5])
        XCTAssertTrue((0..<7).allSatisfy(d.state.isReady))
    }
}
