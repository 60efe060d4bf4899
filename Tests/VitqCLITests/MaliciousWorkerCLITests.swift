import Foundation
import VitqFormats
import VitqTestSupport
import XCTest

/// Lying worker processes (`vitq worker --lie KIND`, a hidden test flag) join a real
/// `vitq coordinator` beside honest workers on the real ViT-Tiny. The coordinator never dies,
/// drops the liar with a line naming it and what was wrong, and writes the in-process bytes.
final class MaliciousWorkerCLITests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    nonisolated(unsafe) static var referenceSHA: String?
    /// The in-process sha256 of DistributedCLITests' 4-shard job (computed once).
    func reference() throws -> String {
        if let s = Self.referenceSHA { return s }
        let out = makeTempDir() + "/in-process.safetensors"
        let r = try CLIRunner.run(["quantize", Fixtures.vitTiny] + DistributedCLITests.calibration + ["--out", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        let s = try sha(out)
        Self.referenceSHA = s
        return s
    }

    func sha(_ path: String) throws -> String { SHA256.hex(of: try Data(contentsOf: URL(fileURLWithPath: path))) }
    func log(_ name: String) -> String { (try? String(contentsOfFile: dir + "/" + name, encoding: .utf8)) ?? "" }

    /// Runs a coordinator expecting `workers.count` workers, the workers (each with its extra
    /// arguments), and returns the coordinator's exit status and the output's sha256.
    func run(workers: [[String]], coordinator extra: [String] = []) throws -> (status: Int32?, sha: String?) {
        let ep = "ipc://\(dir)/c.ipc", out = dir + "/q.safetensors"
        let c = try CLIRunner.start(["coordinator", Fixtures.vitTiny] + DistributedCLITests.calibration +
                                    ["--out", out, "--bind", ep, "--expect-workers", "\(workers.count)", "--heartbeat", "0.5"] + extra,
                                    log: dir + "/coordinator.log")
        let ws = try workers.enumerated().map { i, args in
            try CLIRunner.start(["worker", "--connect", ep, "--threads", "1", "--name", "w\(i + 1)", "--wait", "60", "--once"] + args,
                                log: dir + "/worker\(i + 1).log")
        }
        let status = CLIRunner.wait(c, seconds: 600)
        for w in ws where w.isRunning { w.terminate() }
        for w in ws { w.waitUntilExit() }
        return (status, FileManager.default.fileExists(atPath: out) ? try sha(out) : nil)
    }

    /// A worker whose score tables hold a NaN, and one whose ranges have no values (which
    /// crashed the coordinator before: SIGILL in ScaleSearch), each beside an honest worker.
    func testShapeAndNaNLiarsAreDroppedAndTheRunGivesTheInProcessBytes() throws {
        try Fixtures.require()
        let ref = try reference()
        for (lie, field) in [("ranges-count", "field 'count'"), ("nan", "field 'scores'")] {
            let (status, sha) = try run(workers: [["--lie", lie], []])
            let text = log("coordinator.log")
            XCTAssertEqual(status, 0, "\(lie):\n" + text)
            XCTAssertEqual(sha, ref, lie)
            XCTAssertTrue(text.contains(field) && text.contains("dropped w1"), "\(lie): the liar and the field are named:\n" + text)
            try? FileManager.default.removeItem(atPath: dir + "/q.safetensors")
        }
    }

    /// A worker that returns plausible numbers of the right shape, beside two honest ones:
    /// with --verify 1.0 the honest pair outvotes it on every unit it holds.
    func testAValueLiarIsOutvotedWithVerifyAndTheRunGivesTheInProcessBytes() throws {
        try Fixtures.require()
        let ref = try reference()
        let (status, sha) = try run(workers: [[], ["--lie", "values"], []], coordinator: ["--verify", "1.0"])
        let text = log("coordinator.log")
        XCTAssertEqual(status, 0, text)
        XCTAssertEqual(sha, ref)
        XCTAssertTrue(text.contains("a third worker decides"), text)
        XCTAssertTrue(text.contains("returned a result that two other workers contradict"), text)
        XCTAssertTrue(text.contains("dropped w2"), text)
    }

    /// A worker that heartbeats but never reports READY holds its shards only until the
    /// stage-1 deadline (floor lowered to 2 s for the test).
    func testAWorkerThatNeverReportsReadyIsDroppedAtTheDeadline() throws {
        try Fixtures.require()
        let ref = try reference()
        let (status, sha) = try run(workers: [[], ["--lie", "never-ready"]], coordinator: ["--deadline-floor", "2"])
        let text = log("coordinator.log")
        XCTAssertEqual(status, 0, text)
        XCTAssertEqual(sha, ref)
        XCTAssertTrue(text.contains("made no progress") && text.contains("stage-1 limit"), text)
    }

    /// 40 peers that connect over raw TCP, complete the ZMTP handshake, say HELLO and never
    /// read a byte: the ~30 MB inline JOB is not copied per peer (it pinned 2.6 GB for 100 such
    /// peers before), and a real worker then finishes the run with the in-process bytes.
    func testPeersThatNeverReadDoNotPinAJobCopyEach() throws {
        try Fixtures.require()
        let ref = try reference()
        let port = 20000 + Int(getpid() % 20000) + 7
        let ep = "tcp://127.0.0.1:\(port)", out = dir + "/q.safetensors"
        let c = try CLIRunner.start(["coordinator", Fixtures.vitTiny] + DistributedCLITests.calibration +
                                    ["--out", out, "--bind", ep, "--expect-workers", "1", "--heartbeat", "0.5"], log: dir + "/coordinator.log")
        let deadline = Date().addingTimeInterval(120)
        while !log("coordinator.log").contains("listening on") && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        Thread.sleep(forTimeInterval: 0.5)
        let before = try XCTUnwrap(Self.residentMiB(c.processIdentifier))
        let peers = try (0..<40).map { i in try RawZmtpPeer(port: UInt16(port), hello: "{\"name\":\"raw\(i)\",\"versions\":[1]}") }
        Thread.sleep(forTimeInterval: 3)
        let after = try XCTUnwrap(Self.residentMiB(c.processIdentifier))
        XCTAssertLessThan(after - before, 200, "coordinator RSS \(before) MiB → \(after) MiB with 40 peers that never read:\n" + log("coordinator.log"))
        XCTAssertTrue(c.isRunning, log("coordinator.log"))
        let w = try CLIRunner.start(["worker", "--connect", ep, "--threads", "1", "--name", "honest", "--wait", "60", "--once"], log: dir + "/worker.log")
        XCTAssertEqual(CLIRunner.wait(c, seconds: 600), 0, log("coordinator.log"))
        CLIRunner.wait(w, seconds: 10)
        XCTAssertEqual(try sha(out), ref)
        withExtendedLifetime(peers) {}
    }

    /// With CURVE, one allowed key may have at most --max-workers-per-key live workers: a
    /// second worker with the key is refused in one line, the first keeps its place.
    func testWorkersPerCurveKeyAreBounded() throws {
        try Fixtures.require()
        for name in ["coordinator", "shared"] { XCTAssertEqual(try CLIRunner.run(["keygen", "--out", dir + "/" + name]).status, 0) }
        let port = 20000 + Int(getpid() % 20000) + 11
        let ep = "tcp://127.0.0.1:\(port)"
        let c = try CLIRunner.start(["coordinator", Fixtures.vitTiny] + DistributedCLITests.calibration +
                                    ["--out", dir + "/q.safetensors", "--bind", ep, "--expect-workers", "2", "--max-workers-per-key", "1",
                                     "--curve-secret", dir + "/coordinator.key", "--allow", dir + "/shared.pub"], log: dir + "/coordinator.log")
        defer { c.terminate(); c.waitUntilExit() }
        let keyArgs = ["--curve-secret", dir + "/shared.key", "--server-key", dir + "/coordinator.pub"]
        let first = try CLIRunner.start(["worker", "--connect", ep, "--threads", "1", "--name", "first", "--wait", "60", "--once"] + keyArgs,
                                        log: dir + "/worker1.log")
        defer { first.terminate(); first.waitUntilExit() }
        let deadline = Date().addingTimeInterval(120)
        while !log("coordinator.log").contains("(first) joined") && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        let second = try CLIRunner.run(["worker", "--connect", ep, "--threads", "1", "--name", "second", "--wait", "60", "--once"] + keyArgs)
        XCTAssertEqual(second.status, 1, second.stderr)
        XCTAssertTrue(second.stderr.contains("already has 1 live workers (at most 1, --max-workers-per-key)"), second.stderr)
        XCTAssertTrue(first.isRunning, log("worker1.log"))
        XCTAssertTrue(c.isRunning, log("coordinator.log"))
    }

    /// VmRSS of process `pid` in MiB.
    static func residentMiB(_ pid: Int32) -> Int? {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kb = Int(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return kb / 1024
    }

    /// `vitq quantize --workers 3 --verify 1.0`: every unit scored twice by honest local workers,
    /// no mismatch, the in-process bytes.
    func testQuantizeWithLocalWorkersAndVerifyGivesTheInProcessBytes() throws {
        try Fixtures.require()
        let ref = try reference()
        let out = dir + "/v.safetensors"
        let r = try CLIRunner.run(["quantize", Fixtures.vitTiny] + DistributedCLITests.calibration + ["--out", out, "--workers", "3", "--verify", "1.0"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("--verify 1: a seeded 100% of units also go to a second worker"), r.stderr)
        XCTAssertFalse(r.stderr.contains("different results"), r.stderr)
        XCTAssertEqual(try sha(out), ref)
    }

    func testVerifyFlagsAreChecked() throws {
        let c = try CLIRunner.run(["coordinator", "m.safetensors", "--data", "d.npy", "--out", dir + "/q.safetensors", "--verify", "0.5"])
        XCTAssertNotEqual(c.status, 0, c.stderr)
        XCTAssertTrue(c.stderr.contains("--verify needs at least 2 workers (3 to settle a mismatch); --expect-workers is 1"), c.stderr)
        let q = try CLIRunner.run(["quantize", "m.safetensors", "--data", "d.npy", "--out", dir + "/q.safetensors", "--workers", "2", "--verify", "1.5"])
        XCTAssertTrue(q.stderr.contains("--verify must be a fraction in 0...1"), q.stderr)
        let w = try CLIRunner.run(["worker", "--connect", "ipc:///tmp/x", "--lie", "sometimes"])
        XCTAssertTrue(w.stderr.contains("--lie must be one of"), w.stderr)
    }
}

/// A ZMTP 3.0 peer over a raw TCP socket that completes the NULL handshake as a DEALER, sends
/// one HELLO and never reads: what a ZeroMQ library would drain, it leaves in the kernel.
final class RawZmtpPeer {
    let fd: Int32

    init(port: UInt16, hello body: String) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { close(fd); throw POSIXError(.ECONNREFUSED) }
        var greeting = [UInt8](repeating: 0, count: 64)
        greeting[0] = 0xff; greeting[9] = 0x7f; greeting[10] = 3; greeting[11] = 0
        for (i, b) in "NULL".utf8.enumerated() { greeting[12 + i] = b }
        var ready: [UInt8] = [5] + Array("READY".utf8) + [11] + Array("Socket-Type".utf8) + [0, 0, 0, 6] + Array("DEALER".utf8)
        ready = [0x04, UInt8(ready.count)] + ready
        let json = Array(body.utf8)
        let message: [UInt8] = [0x01, 2, 0x01, 0x01] + [0x00, UInt8(json.count)] + json
        let all = greeting + ready + message
        _ = all.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    }

    deinit { close(fd) }
}
