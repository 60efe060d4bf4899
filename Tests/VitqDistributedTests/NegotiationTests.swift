import VitqDistributed
import XCTest

/// Version negotiation (PROTOCOL.md §3): the highest common version, or ERROR and a drop.
final class NegotiationTests: XCTestCase {
    func testHighestCommonVersion() {
        XCTAssertEqual(ProtocolVersion.negotiate(ours: [1, 2, 3], theirs: [2, 3, 4]), 3)
        XCTAssertEqual(ProtocolVersion.negotiate(ours: [1], theirs: [1]), 1)
        XCTAssertNil(ProtocolVersion.negotiate(ours: [1], theirs: [2, 3]))
    }

    func testJoinGetsTheJobAtTheChosenVersion() {
        var d = Driver()
        let out = d.receive(.hello(Hello(versions: [1, 2, 3], name: "a")), from: Fx.peers[0])
        XCTAssertEqual(out.sent(to: Fx.peers[0]).first, .job(Fx.job(shards: 4), blobs: []))
        XCTAssertEqual(d.state.version(of: Fx.peers[0]), 3)
        // A version-2 worker still takes part in a run without reconstruction units.
        XCTAssertEqual(d.receive(.hello(Hello(versions: [2], name: "b")), from: Fx.peers[1]).sent(to: Fx.peers[1]).first, .job(Fx.job(shards: 4), blobs: []))
        XCTAssertEqual(d.state.version(of: Fx.peers[1]), 2)
    }

    /// A run whose reconstruction units go to the workers speaks only version 3: a version-2
    /// worker, which cannot read a `reconstruct` unit, is refused at HELLO rather than mid-run.
    func testAReconstructionRunRefusesAVersionTwoWorker() {
        var settings = Fx.settings()
        settings.versions = ProtocolVersion.reconstruction
        var d = Driver(settings)
        let out = d.receive(.hello(Hello(versions: [2], name: "old")), from: Fx.peers[0])
        XCTAssertEqual(out.sent(to: Fx.peers[0]), [.error(code: .version, message: "coordinator speaks [3], worker speaks [2]")])
        XCTAssertEqual(out.drops, [Fx.peers[0]])
    }

    /// A worker of the previous protocol (version 1: BYE without a kind) gets one ERROR line
    /// naming both sides' versions, and the run goes on without it.
    func testAVersionOneWorkerIsRefusedInOneLine() {
        var d = Driver()
        let out = d.receive(.hello(Hello(versions: [1], name: "old")), from: Fx.peers[0])
        let refusal = Message.error(code: .version, message: "coordinator speaks [2, 3], worker speaks [1]")
        XCTAssertEqual(out.filter { if case .sendAtVersion = $0 { return true }; return false }, [.sendAtVersion(refusal, to: Fx.peers[0], version: 1)],
                       "the ERROR goes at version 1, which the old worker reads")
        let oldWorker = MessageCodec(versions: [1])
        XCTAssertEqual(try oldWorker.decode(MessageCodec().encode(refusal, version: 1)), Envelope(version: 1, message: refusal))
        XCTAssertEqual(out.drops, [Fx.peers[0]])
        XCTAssertTrue(d.state.liveWorkers.isEmpty)
        XCTAssertEqual(d.state.phase, .waiting)
        d.join([Fx.peers[1], Fx.peers[2]])
        XCTAssertEqual(d.state.phase, .running, "the current workers still start the run")
    }

    func testNoCommonVersionIsRefused() {
        var d = Driver()
        let out = d.receive(.hello(Hello(versions: [4, 5], name: "new")), from: Fx.peers[0])
        guard case let .error(code, text)? = out.sent(to: Fx.peers[0]).first else { return XCTFail("no ERROR") }
        XCTAssertEqual(code, .version)
        XCTAssertTrue(text.contains("coordinator speaks [2, 3]") && text.contains("[4, 5]"), text)
        XCTAssertEqual(out.drops, [Fx.peers[0]])
        XCTAssertTrue(d.state.liveWorkers.isEmpty)
    }

    func testMessageAtAnotherVersionIsAViolation() {
        var d = Driver(Fx.settings(workers: 1))
        d.join([Fx.peers[0]])
        let out = d.keep(d.state.receive(Envelope(version: 1, message: .ready(shard: 0, attempt: 0)), from: Fx.peers[0]))
        XCTAssertEqual(out.drops, [Fx.peers[0]])
    }

    /// A worker heartbeats before its JOB arrives, at the highest version it speaks, which need
    /// not be the link's: a HEARTBEAT (it carries nothing) is a sign of life at any version.
    func testAHeartbeatAtAnotherVersionIsASignOfLife() {
        var d = Driver(Fx.settings(workers: 1))
        d.join([Fx.peers[0]])
        let out = d.keep(d.state.receive(Envelope(version: 1, message: .heartbeat), from: Fx.peers[0]))
        XCTAssertEqual(out.drops, [])
        XCTAssertEqual(d.state.liveWorkers.count, 1)
    }
}
