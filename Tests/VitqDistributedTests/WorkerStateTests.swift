import Foundation
import VitqDistributed
import XCTest

/// The worker's state machine without sockets, on a manual clock (PROTOCOL.md §3–4): the
/// JOB and the link's version, heartbeats both ways, a silent coordinator, the reconnect
/// backoff, BYE and ERROR, the typed end of a run, a JOB it cannot take, and `--wait`.
final class WorkerStateTests: XCTestCase {
    let clock = ManualClock()

    /// The model families this test worker knows (the JOB's `modelSpec.family`).
    static let families: Set<String> = ["vit", "swin"]

    func worker(once: Bool = false, wait: Double = 60) -> WorkerState {
        let settings = WorkerSettings(endpoint: "ipc:///tmp/c.ipc", name: "w1", once: once, wait: wait) { job in
            let family = job.modelSpec.family
            return Self.families.contains(family) ? nil : "the JOB's model family '\(family)' is not one this worker knows (\(Self.families.sorted()))"
        }
        return WorkerState(settings: settings, clock: clock)
    }

    func job(family: String? = nil, heartbeat: Double = 1, liveness: Int = 3) -> Job {
        var j = Fx.job(shards: 4)
        if let family { j.modelSpec.family = family }
        j.heartbeat = heartbeat; j.liveness = liveness
        return j
    }

    /// A worker that said HELLO and took a JOB.
    func joined(once: Bool = false, wait: Double = 60, heartbeat: Double = 1, liveness: Int = 3) -> WorkerState {
        var w = worker(once: once, wait: wait)
        _ = w.connect()
        _ = w.receive(Envelope(message: .job(job(heartbeat: heartbeat, liveness: liveness), blobs: [])))
        XCTAssertEqual(w.phase, .joined)
        return w
    }

    func testConnectSaysHelloAndTheJobSetsTheLink() {
        var w = worker()
        XCTAssertEqual(w.phase, .idle)
        XCTAssertEqual(w.connect(), [.send(.hello(Hello(versions: [2, 3], name: "w1")))])
        XCTAssertEqual(w.phase, .hello)
        let j = job(heartbeat: 0.5, liveness: 4)
        XCTAssertEqual(w.receive(Envelope(version: 2, message: .job(j, blobs: [Data([1])]))), [
            .link(version: 2, shardCount: 4),
            .log("joined ipc:///tmp/c.ipc (protocol version 2)"),
            .compute(.job(j, blobs: [Data([1])])),
        ])
        XCTAssertEqual(w.phase, .joined)
        XCTAssertEqual(w.heartbeat, 0.5)
        XCTAssertEqual(w.liveness, 4)
        XCTAssertEqual(w.tickInterval, 0.125)
        let t = WorkTask(request: 7, shard: 1, attempt: 0, unit: .ranges(op: "x"))
        XCTAssertEqual(w.receive(Envelope(message: .assign(shard: 1, attempt: 0))), [.compute(.assign(shard: 1, attempt: 0))])
        XCTAssertEqual(w.receive(Envelope(message: .task(t))), [.compute(.task(t))])
        XCTAssertEqual(w.receive(Envelope(message: .heartbeat)), [])
    }

    func testHeartbeatsGoOutWhenNothingElseWasSent() {
        var w = joined()
        clock.advance(0.75)
        XCTAssertEqual(w.tick(), [])
        XCTAssertEqual(w.reply(.ready(shard: 0, attempt: 0)), [.send(.ready(shard: 0, attempt: 0))])
        clock.advance(0.75)
        XCTAssertEqual(w.tick(), [], "the READY 0.75 s ago counts as a sign of life")
        _ = w.receive(Envelope(message: .heartbeat))
        clock.advance(0.25)
        XCTAssertEqual(w.tick(), [.send(.heartbeat)])
        XCTAssertEqual(w.tick(), [])
    }

    func testASilentCoordinatorIsLostAfterLivenessHeartbeats() {
        var w = joined(heartbeat: 1, liveness: 3)
        var sent = 0
        for _ in 0..<23 {
            clock.advance(0.125)
            for d in w.tick() {
                guard d == .send(.heartbeat) else { return XCTFail("\(d) before 3 heartbeats were missed") }
                sent += 1
            }
        }
        XCTAssertEqual(sent, 2, "one heartbeat per interval while waiting")
        clock.advance(0.125)
        XCTAssertEqual(w.tick(), [.log("the coordinator missed 3 heartbeats"), .log("reconnecting in 1 s"), .reconnect(after: 1)])
        XCTAssertEqual(w.phase, .idle)
        XCTAssertEqual(w.tick(), [], "no link, no heartbeats")
        XCTAssertEqual(w.receive(Envelope(message: .assign(shard: 0, attempt: 0))), [], "messages of the lost link are ignored")
        XCTAssertEqual(w.reply(.ready(shard: 0, attempt: 0)), [], "so are replies for it")
    }

    func testReconnectBackoffDoublesUpTo32Seconds() {
        var w = worker(wait: 0)
        var delays: [Double] = []
        for _ in 0..<9 {
            _ = w.connect()
            _ = w.receive(Envelope(message: .job(job(), blobs: [])))
            clock.advance(3)
            for case let .reconnect(d) in w.tick() { delays.append(d); clock.advance(d) }
        }
        XCTAssertEqual(delays, [1, 2, 4, 8, 16, 32, 32, 32, 32])
    }

    func testAFinishedRunResetsTheBackoff() {
        var w = worker(wait: 0)
        for _ in 0..<3 { _ = w.connect(); _ = w.malformed(.unknownType(0x55)) }
        XCTAssertEqual(w.backoff, 8)
        _ = w.connect()
        XCTAssertEqual(w.receive(Envelope(message: .bye(.runFinished, reason: "run finished"))), [
            .log("coordinator: BYE (run finished)"), .log("run finished; waiting for the next one"), .reconnect(after: 1),
        ])
        XCTAssertEqual(w.backoff, 1)
        XCTAssertEqual(w.phase, .idle)
    }

    func testTheTypedEndOfARunStopsAOnceWorkerWithStatus0() {
        var w = joined(once: true)
        let out = w.receive(Envelope(message: .bye(.runFinished, reason: "any text")))
        XCTAssertEqual(out, [.log("coordinator: BYE (any text)"), .stop(.finished)])
        XCTAssertEqual(WorkerStop.finished.exitCode, 0)
        XCTAssertEqual(w.phase, .stopped)
        XCTAssertEqual(w.tick(), [])
        XCTAssertEqual(w.connect(), [], "a stopped worker does not connect again")
    }

    func testAByeThatOnlyEndsTheLinkReconnects() {
        var w = joined(once: true)
        let out = w.receive(Envelope(message: .bye(.leaving, reason: "run finished")))
        XCTAssertEqual(out, [.log("coordinator: BYE (run finished)"), .log("reconnecting in 1 s"), .reconnect(after: 1)],
                       "the reason text is for logs: it never ends the run")
    }

    func testARefusingErrorStopsTheWorkerWithStatus1() {
        for code in [ErrorCode.version, .refused, .integrity] {
            var w = worker()
            _ = w.connect()
            let out = w.receive(Envelope(message: .error(code: code, message: "coordinator speaks [2], worker speaks [1]")))
            let stop = WorkerStop.refused(detail: "\(code.rawValue): coordinator speaks [2], worker speaks [1]")
            XCTAssertEqual(out, [.stop(stop)])
            XCTAssertEqual(stop.exitCode, 1)
            XCTAssertEqual(w.phase, .stopped)
        }
    }

    func testAnyOtherErrorReconnects() {
        for code in [ErrorCode.malformed, .unknownPeer, .failed] {
            var w = joined()
            XCTAssertEqual(w.receive(Envelope(message: .error(code: code, message: "send HELLO first"))), [
                .log("coordinator: ERROR \(code.rawValue): send HELLO first"), .log("reconnecting in 1 s"), .reconnect(after: 1),
            ])
        }
    }

    func testAJobForAnUnknownFamilyIsAnsweredAndStops() {
        var w = worker()
        _ = w.connect()
        let why = "the JOB's model family 'convnext' is not one this worker knows ([\"swin\", \"vit\"])"
        XCTAssertEqual(w.receive(Envelope(message: .job(job(family: "convnext"), blobs: []))), [
            .link(version: ProtocolVersion.current, shardCount: 4), .send(.error(code: .failed, message: why)), .stop(.cannotTakeJob(why)),
        ])
        XCTAssertEqual(w.phase, .stopped)
        var known = worker()
        _ = known.connect()
        XCTAssertTrue(known.receive(Envelope(message: .job(job(family: "swin"), blobs: []))).contains(.compute(.job(job(family: "swin"), blobs: []))))
    }

    func testMalformedFramesAndWorkerOnlyMessagesLoseTheLink() {
        var w = joined()
        XCTAssertEqual(w.malformed(.unknownType(0x55)), [
            .log("malformed message from the coordinator: protocol: unknown message type byte 0x55"), .log("reconnecting in 1 s"), .reconnect(after: 1),
        ])
        var v = joined()
        XCTAssertEqual(v.receive(Envelope(message: .ready(shard: 0, attempt: 0))).first, .log("coordinator sent a worker-only READY; reconnecting"))
        XCTAssertEqual(v.phase, .idle)
    }

    func testNoAnswerForWaitSecondsStops() {
        var w = worker(wait: 10)
        _ = w.connect()
        clock.advance(9.5)
        XCTAssertEqual(w.tick(), [.send(.heartbeat)], "no answer yet: it heartbeats while it waits")
        clock.advance(0.5)
        XCTAssertEqual(w.tick(), [.stop(.unreachable(seconds: 10))])
    }

    func testALinkLostAfterWaitSecondsWithoutAnswerStops() {
        var w = joined(wait: 5)
        clock.advance(5)
        XCTAssertEqual(w.tick(), [.log("the coordinator missed 3 heartbeats"), .stop(.unreachable(seconds: 5))])
    }

    func testWaitZeroNeverGivesUp() {
        var w = worker(wait: 0)
        _ = w.connect()
        clock.advance(1e6)
        XCTAssertEqual(w.tick(), [.send(.heartbeat)], "still waiting, still heartbeating")
        XCTAssertEqual(w.phase, .hello)
    }

    /// A large JOB can take longer than the coordinator's liveness window to arrive: the worker
    /// heartbeats every interval after its HELLO, before the JOB as after it.
    func testTheWorkerHeartbeatsWhileItsJobIsArriving() {
        var w = worker(wait: 60)
        _ = w.connect()
        clock.advance(0.5)
        XCTAssertEqual(w.tick(), [])
        clock.advance(0.5)
        XCTAssertEqual(w.tick(), [.send(.heartbeat)])
        clock.advance(0.25)
        XCTAssertEqual(w.tick(), [], "one per interval")
        clock.advance(0.75)
        XCTAssertEqual(w.tick(), [.send(.heartbeat)])
        XCTAssertEqual(w.phase, .hello)
    }
}
