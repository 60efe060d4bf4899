import Foundation
import VitqFormats
import VitqTestSupport
import XCTest

/// Block reconstruction on the workers (issue 24, item 2) with real processes on the real
/// ViT-Tiny: each parallel-mode unit is one whole-set unit of work, so 1, 2 and 4 workers write
/// the in-process bytes; a worker killed with SIGKILL mid-reconstruction, a killed coordinator
/// resumed from its journal and a worker that returns short integers change nothing.
/// A short W4A4 schedule: 16 images in 4 shards, 40 steps per unit.
final class ReconstructionWorkersCLITests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    static let recipeDir = makeTempDir()
    static var recipe: String {
        let path = recipeDir + "/rw.yaml"
        if !FileManager.default.fileExists(atPath: path) {
            try! """
                name: rw
                base: ptq4vit-fast
                weight_bits: 4
                activation_bits: 4
                weight_granularity: per_channel
                shard_images: 4
                search_candidates: 8
                reconstruction: parallel
                reconstruction_iterations: 40
                reconstruction_batch: 2
                qdrop: 0.5
                """.write(toFile: path, atomically: true, encoding: .utf8)
        }
        return path
    }
    static var calibration: [String] { ["--data", Fixtures.even500Images, "--calib-offset", "0", "--calib", "16", "--recipe", recipe] }
    static let units = 14

    /// The in-process run's sha256 (computed once).
    nonisolated(unsafe) static var referenceSHA: String?
    func reference() throws -> String {
        if let s = Self.referenceSHA { return s }
        let out = Self.recipeDir + "/in-process.safetensors"
        let r = try CLIRunner.run(["quantize", Fixtures.vitTiny] + Self.calibration + ["--out", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        let s = try sha(out)
        Self.referenceSHA = s
        return s
    }

    func sha(_ path: String) throws -> String { try SHA256.hex(ofFile: path) }
    func log(_ name: String) -> String { (try? String(contentsOfFile: dir + "/" + name, encoding: .utf8)) ?? "" }

    func coordinator(_ out: String, endpoint: String, workers: Int, extra: [String] = []) throws -> Process {
        try CLIRunner.start(["coordinator", Fixtures.vitTiny] + Self.calibration +
                            ["--out", out, "--bind", endpoint, "--expect-workers", "\(workers)", "--heartbeat", "0.5"] + extra,
                            log: dir + "/coordinator.log")
    }

    func worker(_ i: Int, endpoint: String, extra: [String] = ["--once"]) throws -> Process {
        try CLIRunner.start(["worker", "--connect", endpoint, "--threads", "1", "--name", "w\(i)", "--wait", "60"] + extra,
                            log: dir + "/worker\(i).log", stdout: dir + "/worker\(i).out")
    }

    /// Reconstruction units in the journal beside `out`.
    func unitsJournaled(_ out: String) -> Int {
        guard let text = try? String(contentsOfFile: out + ".journal", encoding: .utf8) else { return 0 }
        return text.split(separator: "\n").filter { $0.contains("\"reconstruction\":") }.count
    }

    func testOneTwoAndFourWorkersWriteTheInProcessBytes() throws {
        try Fixtures.require()
        let ref = try reference()
        for n in [1, 2, 4] {
            let out = dir + "/w\(n).safetensors"
            let r = try CLIRunner.run(["quantize", Fixtures.vitTiny] + Self.calibration + ["--out", out, "--workers", "\(n)", "--json"])
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertEqual(try sha(out), ref, "\(n) worker(s)")
            let units = try XCTUnwrap(try r.jsonObject()["reconstruction"] as? [[String: Any]])
            XCTAssertEqual(units.count, Self.units)
            // Every unit ran on a worker, none on the coordinator.
            let ran = r.stderr.split(separator: "\n").filter { $0.contains("vitq worker local-") && $0.contains(": reconstructed ") }
            XCTAssertEqual(ran.count, Self.units, r.stderr)
            if n == 4 { XCTAssertEqual(Set(ran.map { $0.split(separator: ":")[0] }).count, 4, "4 workers share the units: \(ran)") }
        }
    }

    func testAWorkerKilledDuringReconstructionChangesNothing() throws {
        try Fixtures.require()
        let ref = try reference()
        let ep = "ipc://\(dir)/c.ipc", out = dir + "/q.safetensors"
        let c = try coordinator(out, endpoint: ep, workers: 3)
        let ws = try (1...3).map { try worker($0, endpoint: ep) }
        try FileEvents.wait(for: "2 reconstruction units in \(out).journal\n" + log("coordinator.log"), in: dir, seconds: 240) { unitsJournaled(out) >= 2 }
        kill(ws[1].processIdentifier, SIGKILL)
        let killedAt = unitsJournaled(out)
        XCTAssertEqual(CLIRunner.wait(c, seconds: 300), 0, log("coordinator.log"))
        XCTAssertLessThan(killedAt, Self.units, "the worker died mid-reconstruction")
        XCTAssertTrue(log("coordinator.log").contains("moves from w2"), log("coordinator.log"))
        XCTAssertEqual(try sha(out), ref)
        for w in ws { CLIRunner.wait(w, seconds: 10) }
    }

    func testAKilledCoordinatorResumesWithTheFinishedUnits() throws {
        try Fixtures.require()
        let ref = try reference()
        let ep = "ipc://\(dir)/c.ipc", out = dir + "/q.safetensors"
        let c1 = try coordinator(out, endpoint: ep, workers: 2)
        let ws = try (1...2).map { try worker($0, endpoint: ep, extra: []) }
        try FileEvents.wait(for: "3 reconstruction units in \(out).journal\n" + log("coordinator.log"), in: dir, seconds: 240) { unitsJournaled(out) >= 3 }
        kill(c1.processIdentifier, SIGKILL)
        c1.waitUntilExit()
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no output from a killed run")
        let kept = unitsJournaled(out)
        XCTAssertLessThan(kept, Self.units)
        let c2 = try coordinator(out, endpoint: ep, workers: 2, extra: ["--resume"])
        XCTAssertEqual(CLIRunner.wait(c2, seconds: 300), 0, log("coordinator.log"))
        XCTAssertTrue(log("coordinator.log").contains("resuming: \(kept) of \(Self.units) reconstruction units"), log("coordinator.log"))
        XCTAssertEqual(try sha(out), ref)
        for w in ws { kill(w.processIdentifier, SIGTERM); CLIRunner.wait(w, seconds: 10) }
    }

    func testAWorkerReturningShortIntegersIsDroppedAndTheRunGoesOn() throws {
        try Fixtures.require()
        let ref = try reference()
        let ep = "ipc://\(dir)/c.ipc", out = dir + "/q.safetensors"
        let c = try coordinator(out, endpoint: ep, workers: 2)
        let honest = try worker(1, endpoint: ep)
        let liar = try worker(2, endpoint: ep, extra: ["--once", "--lie", "integers"])
        XCTAssertEqual(CLIRunner.wait(c, seconds: 300), 0, log("coordinator.log"))
        XCTAssertTrue(log("coordinator.log").contains("field 'integers'"), log("coordinator.log"))
        XCTAssertEqual(try sha(out), ref)
        CLIRunner.wait(honest, seconds: 10)
        CLIRunner.wait(liar, seconds: 10)
    }
}
