import Foundation
import VitqDistributed
import VitqFormats
import VitqTensor
import VitqTestSupport
import VitqZmq
import XCTest

/// Distributed calibration end to end with real processes on the real ViT-Tiny: the same
/// output bytes in process and with 1, 2 and 4 workers, after kill -9 of a worker or of the
/// coordinator (--resume), with CURVE (a wrong key is refused), and under a flood of malformed
/// frames. A 4-shard test recipe (ptq4vit-fast, 4 images per shard, 16 images) keeps it short.
final class DistributedCLITests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    static let recipeDir = makeTempDir()
    static var recipe: String {
        let path = recipeDir + "/four-shards.yaml"
        if !FileManager.default.fileExists(atPath: path) {
            try! "name: four-shards\nbase: ptq4vit-fast\nshard_images: 4\n".write(toFile: path, atomically: true, encoding: .utf8)
        }
        return path
    }
    static var calibration: [String] {
        ["--data", Fixtures.even500Images, "--calib-offset", "0", "--calib", "16", "--recipe", recipe]
    }

    /// The in-process run's sha256 (computed once).
    nonisolated(unsafe) static var referenceSHA: String?
    func reference() throws -> String {
        if let s = Self.referenceSHA { return s }
        let out = Self.recipeDir + "/in-process.safetensors"
        let s = try quantize(out, workers: 0)
        Self.referenceSHA = s
        return s
    }

    func quantize(_ out: String, workers: Int) throws -> String {
        let r = try CLIRunner.run(["quantize", Fixtures.vitTiny] + Self.calibration + ["--out", out, "--workers", "\(workers)", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout + r.stderr)
        let sha = try XCTUnwrap(j["sha256"] as? String)
        XCTAssertEqual(sha, SHA256.hex(of: try Data(contentsOf: URL(fileURLWithPath: out))), "the CLI prints the file's sha256")
        if workers > 0 {
            XCTAssertEqual(j["workers"] as? Int, workers)
            let perOp = try XCTUnwrap(j["wire_bytes_per_op"] as? [String: Int])
            XCTAssertEqual(perOp.count, 74, "bytes on the wire reported for every op")
            XCTAssertTrue(perOp.values.allSatisfy { $0 > 0 })
            // Each worker's last RESULT reports its peak RSS: at least the model's floats (23 MB), at most the machine.
            let rss = try XCTUnwrap(j["worker_peak_rss_bytes"] as? [String: Int], r.stdout)
            XCTAssertEqual(rss.count, workers, "\(rss)")
            XCTAssertTrue(rss.values.allSatisfy { $0 > 23_000_000 && $0 < 1 << 40 }, "\(rss)")
            XCTAssertEqual(j["bytes_spilled"] as? Int, 0, "no budget given: nothing spills on this machine")
            XCTAssertTrue(r.stderr.contains("vitq worker local-1: stage 1: memory budget"), r.stderr)
        } else {
            XCTAssertGreaterThan(j["peak_rss_bytes"] as? Int ?? 0, 23_000_000, r.stdout)
            XCTAssertTrue(r.stderr.contains("stage 1: memory budget") && r.stderr.contains("physical memory"), r.stderr)
        }
        return sha
    }

    func testInProcessAndOneTwoFourWorkersWriteIdenticalBytes() throws {
        try Fixtures.require()
        let ref = try reference()
        for n in [1, 2, 4] {
            XCTAssertEqual(try quantize(dir + "/w\(n).safetensors", workers: n), ref, "\(n) workers")
        }
    }

    /// The sha256 of `<name>0.safetensors` (in process) and `<name>2.safetensors` (2 workers), each
    /// quantized on 8 images with ptq4vit-fast (4 images per shard) plus the recipe lines `recipe`.
    func inProcessAndTwoWorkers(_ name: String, recipe lines: String) throws -> [String] {
        let recipe = dir + "/\(name).yaml"
        try "name: \(name)\nbase: ptq4vit-fast\nshard_images: 4\n\(lines)".write(toFile: recipe, atomically: true, encoding: .utf8)
        return try [0, 2].map { workers in
            let out = dir + "/\(name)\(workers).safetensors"
            let r = try CLIRunner.run(["quantize", Fixtures.vitTiny, "--data", Fixtures.even500Images, "--calib", "8", "--recipe", recipe,
                                       "--out", out, "--workers", "\(workers)"])
            XCTAssertEqual(r.status, 0, r.stderr)
            return try sha(out)
        }
    }

    /// With `smooth_alpha` (centred) and `gelu_smooth_alpha` the coordinator measures the input maxima once
    /// and ships them in the JOB; the workers' smoothed model must be the in-process one, bit for
    /// bit, and the file carries GELU smoothing's multipliers.
    func testChannelSmoothingGivesTheSameBytesWithWorkers() throws {
        try Fixtures.require()
        let shas = try inProcessAndTwoWorkers("smooth", recipe: "smooth_alpha: 0.5\nsmooth_center: true\ngelu_smooth_alpha: 0.5\n")
        XCTAssertEqual(shas[0], shas[1])
        XCTAssertNotEqual(shas[0], try reference(), "smoothing changes the model")
        let names = try TensorFile(path: dir + "/smooth0.safetensors").names
        XCTAssertTrue(names.contains("blocks.11.mlp.fc2.input_multiplier"), "\(names.filter { $0.contains("fc2") })")
    }

    /// Per-token inputs (`activation_granularity: per_token`): the workers search the weights on
    /// per-token-quantized inputs, and the file is the in-process one, bit for bit.
    func testPerTokenInputsGiveTheSameBytesWithWorkers() throws {
        try Fixtures.require()
        let shas = try inProcessAndTwoWorkers("token", recipe: "weight_granularity: per_channel\nactivation_granularity: per_token\n")
        XCTAssertEqual(shas[0], shas[1])
        let file = try TensorFile(path: dir + "/token0.safetensors")
        XCTAssertFalse(file.names.contains("blocks.0.mlp.fc2.input_scale"), "per-token inputs have no stored scale")
        XCTAssertTrue(file.metadata["ops"]!.contains("\"per_token\""))
    }

    // MARK: processes by hand

    func coordinator(_ out: String, endpoint: String, workers: Int, extra: [String] = [], calibration: [String] = calibration) throws -> Process {
        try CLIRunner.start(["coordinator", Fixtures.vitTiny] + calibration +
                            ["--out", out, "--bind", endpoint, "--expect-workers", "\(workers)", "--status", dir + "/status.json",
                             "--heartbeat", "0.5"] + extra, log: dir + "/coordinator.log")
    }

    /// Worker `i`: stderr in `worker<i>.log`, stdout in `worker<i>.out`.
    func worker(_ i: Int, endpoint: String, extra: [String] = ["--once"]) throws -> Process {
        try CLIRunner.start(["worker", "--connect", endpoint, "--threads", "1", "--name", "w\(i)", "--wait", "60"] + extra,
                            log: dir + "/worker\(i).log", stdout: dir + "/worker\(i).out")
    }

    /// The coordinator's status file (nil before it exists).
    func status() -> [String: Any]? {
        guard let d = FileManager.default.contents(atPath: dir + "/status.json") else { return nil }
        return try? JSONSerialization.jsonObject(with: d) as? [String: Any]
    }

    /// Ops done according to the status file (0 before it exists).
    func opsDone() -> Int { status()?["ops_done"] as? Int ?? 0 }

    /// Waits until the status file says `n` ops are done (and `also` holds of it); throws on timeout.
    func waitForOps(_ n: Int, seconds: Double = 120, also: ([String: Any]) -> Bool = { _ in true }) throws {
        try FileEvents.wait(for: "\(n) ops done in \(dir)/status.json; last status: \(status().map { "\($0)" } ?? "none")\n" + log("coordinator.log"),
                            in: dir, seconds: seconds) { status().map { opsDone() >= n && also($0) } ?? false }
    }

    /// Decisions in the journal beside `out` (its lines after the header; 0 before it exists).
    func decisionsJournaled(_ out: String) -> Int {
        guard let text = try? String(contentsOfFile: out + ".journal", encoding: .utf8) else { return 0 }
        return max(text.split(separator: "\n").count - 1, 0)
    }

    func log(_ name: String) -> String { (try? String(contentsOfFile: dir + "/" + name, encoding: .utf8)) ?? "" }

    func sha(_ path: String) throws -> String { SHA256.hex(of: try Data(contentsOf: URL(fileURLWithPath: path))) }

    func testKillingOneOfThreeWorkersInStageTwoGivesTheSameBytes() throws {
        try Fixtures.require()
        try killOneOfThreeWorkers(reference: try reference(), totalOps: 74)
    }

    /// Mixed precision: the per-width searches are units like the others, so a killed worker's
    /// shard moves and the allocation still sees every width's statistics.
    func testKillingAWorkerDuringAMixedPrecisionRunGivesTheSameBytes() throws {
        try Fixtures.require()
        let recipe = dir + "/mixed.yaml"
        try "name: mixed\nbase: ptq4vit-fast\nshard_images: 4\nsearch_candidates: 8\nmixed_precision: fisher\ncandidate_bits: [4, 8]\naverage_bits: 6\n"
            .write(toFile: recipe, atomically: true, encoding: .utf8)
        let calibration = ["--data", Fixtures.even500Images, "--calib-offset", "0", "--calib", "16", "--recipe", recipe]
        let inProcess = dir + "/mixed0.safetensors"
        let r = try CLIRunner.run(["quantize", Fixtures.vitTiny] + calibration + ["--out", inProcess])
        XCTAssertEqual(r.status, 0, r.stderr)
        try killOneOfThreeWorkers(reference: try sha(inProcess), totalOps: 2 * 74, calibration: calibration)
        XCTAssertNotNil(try TensorFile(path: dir + "/q.safetensors").metadata["mixed_precision"])
    }

    /// Three workers; w2 is killed with SIGKILL once it holds a shard and 8 units are done; the
    /// coordinator's output must be `reference`.
    func killOneOfThreeWorkers(reference ref: String, totalOps: Int, calibration: [String] = calibration) throws {
        let ep = "ipc://\(dir)/c.ipc", out = dir + "/q.safetensors"
        let c = try coordinator(out, endpoint: ep, workers: 3, calibration: calibration)
        let ws = try (1...3).map { try worker($0, endpoint: ep) }
        // w2 holds a shard once 8 ops are done: killing it must move that shard.
        try waitForOps(8) { status in
            (status["workers"] as? [[String: Any]] ?? []).contains { $0["name"] as? String == "w2" && !($0["shards"] as? [Int] ?? []).isEmpty }
        }
        let before = opsDone()
        kill(ws[1].processIdentifier, SIGKILL)
        XCTAssertEqual(CLIRunner.wait(c, seconds: 300), 0, log("coordinator.log"))
        XCTAssertLessThan(before, totalOps, "the worker died mid-run")
        XCTAssertTrue(log("coordinator.log").contains("missed"), "the dead worker is detected by heartbeats:\n" + log("coordinator.log"))
        XCTAssertTrue(log("coordinator.log").contains("moves from w2"), log("coordinator.log"))
        XCTAssertEqual(try sha(out), ref)
        // The status file names each live worker's peak RSS from its RESULTs.
        let live = (try XCTUnwrap(status())["workers"] as? [[String: Any]] ?? []).filter { $0["state"] as? String == "live" }
        XCTAssertFalse(live.isEmpty)
        XCTAssertTrue(live.allSatisfy { ($0["peak_rss_bytes"] as? Int ?? 0) > 23_000_000 && $0["spilled_bytes"] as? Int == 0 }, "\(live)")
        for w in ws { CLIRunner.wait(w, seconds: 10) }
    }

    func testKilledCoordinatorResumesToTheSameBytes() throws {
        try Fixtures.require()
        let ref = try reference()
        let ep = "ipc://\(dir)/c.ipc", out = dir + "/q.safetensors"
        // Workers read the model and images from paths here (a shared file system), sha256-checked.
        let c1 = try coordinator(out, endpoint: ep, workers: 2, extra: ["--ship", "path"])
        // Workers outlive the coordinator: they reconnect with backoff to the resumed one.
        let ws = try (1...2).map { try worker($0, endpoint: ep) }
        try FileEvents.wait(for: "20 decisions in \(out).journal\n" + log("coordinator.log"), in: dir, seconds: 120) { decisionsJournaled(out) >= 20 }
        kill(c1.processIdentifier, SIGKILL)
        c1.waitUntilExit()
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no output from a killed run")
        let journaled = decisionsJournaled(out)
        XCTAssertGreaterThanOrEqual(journaled, 20)
        XCTAssertLessThan(journaled, 74)
        // Without --resume the journal is not overwritten.
        let refused = try CLIRunner.run(["coordinator", Fixtures.vitTiny] + Self.calibration + ["--out", out, "--bind", ep])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("pass --resume"), refused.stderr)
        let c2 = try coordinator(out, endpoint: ep, workers: 2, extra: ["--resume", "--ship", "path"])
        XCTAssertEqual(CLIRunner.wait(c2, seconds: 300), 0, log("coordinator.log"))
        XCTAssertTrue(log("coordinator.log").contains("resuming: \(journaled) of 74 ops"), log("coordinator.log"))
        XCTAssertEqual(try sha(out), ref)
        for w in ws { XCTAssertEqual(CLIRunner.wait(w, seconds: 10), 0) }
    }

    func testWorkerWithAWrongCurveKeyIsRefusedAndTheRunGoesOn() throws {
        try Fixtures.require()
        let ref = try reference()
        for name in ["coordinator", "good", "bad"] {
            XCTAssertEqual(try CLIRunner.run(["keygen", "--out", dir + "/" + name]).status, 0)
        }
        let port = 20000 + Int(getpid() % 20000)
        let ep = "tcp://127.0.0.1:\(port)", out = dir + "/q.safetensors"
        let c = try coordinator(out, endpoint: ep, workers: 1,
                                extra: ["--curve-secret", dir + "/coordinator.key", "--allow", dir + "/good.pub"])
        let bad = try worker(1, endpoint: ep, extra: ["--once", "--curve-secret", dir + "/bad.key", "--server-key", dir + "/coordinator.pub"])
        XCTAssertEqual(CLIRunner.wait(bad, seconds: 60), 1, log("worker1.log"))
        XCTAssertTrue(log("worker1.log").contains("refused"), log("worker1.log"))
        let good = try worker(2, endpoint: ep, extra: ["--once", "--curve-secret", dir + "/good.key", "--server-key", dir + "/coordinator.pub"])
        XCTAssertEqual(CLIRunner.wait(c, seconds: 300), 0, log("coordinator.log"))
        XCTAssertEqual(CLIRunner.wait(good, seconds: 10), 0, log("worker2.log"))
        let badKey = try CurveKeys.readPublic(dir + "/bad.pub")
        XCTAssertTrue(log("coordinator.log").contains("\(badKey) is not in the allow-list"), log("coordinator.log"))
        XCTAssertEqual(try sha(out), ref)
    }

    func testAThousandMalformedFramesNeitherCrashNorStopTheRun() throws {
        try Fixtures.require()
        let ref = try reference()
        let ep = "ipc://\(dir)/c.ipc", out = dir + "/q.safetensors"
        let c = try coordinator(out, endpoint: ep, workers: 1)
        let w = try worker(1, endpoint: ep, extra: ["--once", "--json"])
        try waitForOps(2)
        let context = try ZmqContext()
        // A version mismatch gets a clear ERROR back.
        let peer = try ZmqSocket(context, .dealer)
        try peer.connect(ep)
        try peer.send(try MessageCodec().encode(.hello(Hello(versions: [7], name: "future"))))
        let reply = try XCTUnwrap(try peer.receive(timeoutMs: 10_000))
        guard case let .error(code, text) = try MessageCodec().decode(reply.frames).message else { return XCTFail("expected ERROR") }
        XCTAssertEqual(code, .version)
        XCTAssertTrue(text.contains("coordinator speaks \(ProtocolVersion.supported)"), text)
        // 1,000 random or malformed frame sets from a fresh peer each tenth time.
        var g = SeededRandom(seed: 1000)
        var rogue = try ZmqSocket(context, .dealer)
        try rogue.connect(ep)
        for i in 0..<1000 {
            if i % 100 == 0 { rogue = try ZmqSocket(context, .dealer); try rogue.connect(ep) }
            let frames: [Data]
            switch i % 4 {
            case 0: frames = (0..<Int.random(in: 1...6, using: &g)).map { _ in Data((0..<Int.random(in: 0...40, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) }) }
            case 1: frames = [Data([MessageType.result.rawValue, ProtocolVersion.current]), Data("{\"request\":1,\"shard\":0,\"attempt\":0,\"kind\":\"scores\"}".utf8), Data([1, 2, 3])]
            case 2: frames = [Data([MessageType.ready.rawValue, ProtocolVersion.current]), Data("{\"shard\":99999,\"attempt\":0}".utf8)]
            default: frames = [Data([0xee, 1]), Data("{}".utf8)]
            }
            try rogue.send(frames)
        }
        XCTAssertEqual(CLIRunner.wait(c, seconds: 300), 0, log("coordinator.log"))
        XCTAssertEqual(CLIRunner.wait(w, seconds: 10), 0, log("worker1.log"))
        XCTAssertEqual(try sha(out), ref)
        // `worker --json`: one JSON object on stdout when the run is done.
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(log("worker1.out").utf8)) as? [String: Any], log("worker1.out"))
        XCTAssertEqual(report["name"] as? String, "w1")
        XCTAssertEqual(report["connect"] as? String, ep)
    }

    func testBadSetupsGiveOneClearLine() throws {
        try Fixtures.require()
        // An unreachable endpoint.
        let w = try CLIRunner.run(["worker", "--connect", "tcp://127.0.0.1:9", "--wait", "1"])
        XCTAssertEqual(w.status, 1)
        XCTAssertTrue(w.stderr.contains("tcp://127.0.0.1:9: no coordinator answered in 1 s"), w.stderr)
        // A public endpoint without keys.
        let c = try CLIRunner.run(["coordinator", Fixtures.vitTiny] + Self.calibration + ["--out", dir + "/q.safetensors", "--bind", "tcp://0.0.0.0:5999"])
        XCTAssertEqual(c.status, 1)
        XCTAssertTrue(c.stderr.contains("tcp://0.0.0.0:5999: refusing to bind a non-loopback endpoint without CURVE keys"), c.stderr)
        // A malformed endpoint.
        let e = try CLIRunner.run(["worker", "--connect", "udp://x"])
        XCTAssertTrue(e.stderr.contains("udp://x: expected tcp://HOST:PORT or ipc://PATH"), e.stderr)
        // A missing key file.
        let k = try CLIRunner.run(["worker", "--connect", "tcp://127.0.0.1:9", "--curve-secret", dir + "/none.key", "--server-key", dir + "/none.pub"])
        XCTAssertTrue(k.stderr.contains("none.key: cannot read the key file"), k.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/q.safetensors"))
    }
}
