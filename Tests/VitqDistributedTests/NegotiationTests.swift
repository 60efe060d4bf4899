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
        let out = d.receive(.hello(Hello(versions: [1, 2], name: "a")), from: Fx.peers[0])
        XCTAssertEqual(out.sent(to: Fx.peers[0]).first, .job(Fx.job(shards: 4), blobs: []))
        XCTAssertEqual(d.state.version(of: Fx.peers[0]), 1)
    }

    func testNoCommonVersionIsRefused() {
        var d = Driver()
        let out = d.receive(.hello(Hello(versions: [2, 3], name: "new")), from: Fx.peers[0])
        guard case let .error(code, text)? = out.sent(to: Fx.peers[0]).first else { return XCTFail("no ERROR") }
        XCTAssertEqual(code, .version)
        XCTAssertTrue(text.contains("coordinator speaks [1]") && text.contains("[2, 3]"), text)
        XCTAssertEqual(out.drops, [Fx.peers[0]])
        XCTAssertTrue(d.state.liveWorkers.isEmpty)
    }

    func testMessageAtAnotherVersionIsAViolation() {
        var d = Driver(Fx.settings(workers: 1))
        d.join([Fx.peers[0]])
        let out = d.keep(d.state.receive(Envelope(version: 2, message: .heartbeat), from: Fx.peers[0]))
        XCTAssertEqual(out.drops, [Fx.peers[0]])
    }
}
