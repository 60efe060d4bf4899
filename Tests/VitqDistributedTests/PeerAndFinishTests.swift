import VitqDistributed
import VitqQuant
import XCTest

/// Unknown and misbehaving peers, the journal and the end of the run.
final class PeerAndFinishTests: XCTestCase {
    let a = Fx.peers[0], stranger = PeerID("stranger")

    func testUnknownPeerMessageIsLoggedAndDropped() {
        var d = Driver(Fx.settings(shards: 1, workers: 1))
        d.join([a])
        let out = d.receive(.ready(shard: 0, attempt: 0), from: stranger)
        XCTAssertEqual(out.drops, [stranger])
        XCTAssertEqual(out.logs.count, 1)
        XCTAssertEqual(out.sent(to: stranger), [.error(code: .unknownPeer, message: "send HELLO first")])
        XCTAssertFalse(d.state.isReady(0))
        XCTAssertEqual(d.state.liveWorkers, [a])
    }

    func testCoordinatorOnlyMessageFromAWorkerDropsIt() {
        var d = Driver(Fx.settings(shards: 1, workers: 1))
        d.join([a])
        XCTAssertEqual(d.receive(.assign(shard: 0, attempt: 0), from: a).drops, [a])
    }

    func testMalformedFramesDropThePeerAndTheRunContinues() {
        var d = Driver(Fx.settings(shards: 2, workers: 2))
        d.join([a, Fx.peers[1]])
        d.readyAll()
        let codec = MessageCodec(shardCount: 2)
        var g = FrameFuzzTests.SplitMix(state: 7)
        for _ in 0..<1000 {
            let frames = [Data([6, 1]), Data((0..<20).map { _ in UInt8.random(in: 0...255, using: &g) })]
            do { _ = try codec.decode(frames); XCTFail("garbage decoded") } catch let e as ProtocolError {
                d.keep(d.state.malformed(e, from: stranger))
            } catch { XCTFail("\(error)") }
        }
        XCTAssertEqual(d.state.liveWorkers, [a, Fx.peers[1]])
        XCTAssertEqual(d.state.phase, .running)
        let bad = d.keep(d.state.malformed(.unknownType(0x55), from: a))
        XCTAssertEqual(bad.drops, [a])
        XCTAssertEqual(d.state.liveWorkers, [Fx.peers[1]])
    }

    func testDecisionIsJournaledBeforeItCounts() {
        var d = Driver(Fx.settings(shards: 1, workers: 1, ops: ["x", "y"]))
        d.join([a])
        let decision = OpDecision(op: "x", quantizers: [Fx.uniform, Fx.uniform], bias: nil)
        XCTAssertEqual(d.state.decided(decision), [.journal(decision)])
        XCTAssertFalse(d.state.journaledOps.contains("x"))
        XCTAssertTrue(d.state.journaled("x").isEmpty)
        XCTAssertEqual(d.state.decided(decision).logs.count, 1, "a journaled op is not journaled twice")
    }

    func testFinishWhenEveryOpIsJournaledAndNoRequestIsOutstanding() {
        var d = Driver(Fx.settings(shards: 1, workers: 1, ops: ["x"]))
        d.join([a])
        d.readyAll()
        let t = d.submit(.ranges(op: "x")).1.tasks[0].0
        XCTAssertFalse(d.keep(d.state.journaled("x")).finishes, "a request is outstanding")
        let out = d.receive(.result(WorkReply(request: t.request, shard: 0, attempt: 0, result: .ranges([1]))), from: a)
        XCTAssertTrue(out.finishes)
        XCTAssertEqual(out.sent(to: a), [.bye(.runFinished, reason: "run finished")])
        XCTAssertEqual(d.state.phase, .finished)
        XCTAssertEqual(d.receive(.heartbeat, from: a).logs.count, 1)
    }

    func testResumedRunFinishesOnceTheRestIsJournaled() {
        let done = OpDecision(op: "x", quantizers: [Fx.uniform, Fx.uniform], bias: [0.5])
        var d = Driver(Fx.settings(shards: 1, workers: 1, ops: ["x", "y"]))
        d.state = CoordinatorState(settings: Fx.settings(shards: 1, workers: 1, ops: ["x", "y"]), clock: d.clock, resumed: [done])
        XCTAssertEqual(d.state.decided(done).logs.count, 1)
        XCTAssertFalse(d.tick().finishes)
        XCTAssertTrue(d.keep(d.state.journaled("y")).finishes)
    }

    func testSubmitAfterFinishIsIgnored() {
        var d = Driver(Fx.settings(shards: 1, workers: 1, ops: []))
        XCTAssertTrue(d.tick().finishes)
        XCTAssertEqual(d.submit(.ranges(op: "x")).1.logs.count, 1)
        XCTAssertEqual(d.state.outstanding, [])
    }
}
