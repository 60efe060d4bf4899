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
