import Foundation
import VitqFormats
import VitqTestSupport
import XCTest

/// Method `minmax` (Wu et al.'s calibrators and partial quantization by sensitivity) end to end on
/// the real ViT-Tiny, 8 calibration images in shards of 4: the same bytes in process and on 1, 2
/// and 4 workers, after kill -9 of a worker during the sensitivity probes, and one clear line for
/// a bad calibrator recipe.
final class CalibratorCLITests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// `base` with 4 images per shard and the recipe lines `lines`, written to `dir`/`name`.yaml.
    func recipe(_ name: String, base: String, _ lines: String = "") throws -> String {
        let path = dir + "/\(name).yaml"
        try "name: \(name)\nbase: \(base)\nshard_images: 4\n\(lines)".write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func arguments(_ recipe: String, out: String) -> [String] {
        ["quantize", Fixtures.vitTiny, "--data", Fixtures.even500Images, "--calib-offset", "0", "--calib", "8", "--recipe", recipe, "--out", out]
    }

    /// Quantizes with `workers` workers (0: in process) and returns the file's sha256 and the JSON report.
    func quantize(_ recipe: String, _ label: String, workers: Int) throws -> (sha: String, json: [String: Any]) {
        let out = dir + "/\(label)-\(workers).safetensors"
        let r = try CLIRunner.run(arguments(recipe, out: out) + ["--workers", "\(workers)", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        return (try SHA256.hex(ofFile: out), try r.jsonObject())
    }

    func testMinmaxAndWuGiveTheInProcessBytesOnOneTwoAndFourWorkers() throws {
        try Fixtures.require()
        for (label, base) in [("minmax", "minmax-w8a8"), ("wu", "wu-w8a8")] {
            let r = try recipe(label, base: base)
            let (ref, json) = try quantize(r, label, workers: 0)
            let pq = try XCTUnwrap(json["partial_quantization"] as? [String: Any], "\(label): the report has the partial quantization")
            let float = try XCTUnwrap(pq["float_ops"] as? [String])
            XCTAssertFalse(float.isEmpty, "\(label) leaves an op in float")
            XCTAssertEqual((pq["ranking"] as? [Any])?.count, 62, "every linear op and attention block is probed")
            let meta = try XCTUnwrap(try TensorFile(path: dir + "/\(label)-0.safetensors").metadata["partial_quantization"])
            XCTAssertTrue(meta.contains(float[0]), "the file's metadata names the float ops")
            for n in [1, 2, 4] { XCTAssertEqual(try quantize(r, label, workers: n).sha, ref, "\(label) on \(n) workers") }
        }
    }

    func testEveryCalibratorGivesTheInProcessBytesOnOneTwoAndFourWorkers() throws {
        try Fixtures.require()
        let variants = [
            ("percentile-affine", "activation_calibrator: percentile\npercentile: 99.9\nactivation_symmetric: false\n"),
            ("entropy", "activation_calibrator: entropy\n"),
            ("mse", "activation_calibrator: mse\nweight_calibrator: mse\nmatmul_granularity: per_tensor\n"),
        ]
        var shas: Set<String> = []
        for (label, lines) in variants {
            let r = try recipe(label, base: "minmax-w8a8", "keep_float: 0\n" + lines)
            let one = try quantize(r, label, workers: 0)
            for n in [1, 2, 4] { XCTAssertEqual(try quantize(r, label, workers: n).sha, one.sha, "\(label) on \(n) workers") }
            XCTAssertNotNil(one.json["calibration_agreement"] as? Double, "the fit on the calibration images is reported")
            shas.insert(one.sha)
        }
        XCTAssertEqual(shas.count, variants.count, "each calibrator gives its own file")
    }

    func testKillingAWorkerDuringTheProbesGivesTheSameBytes() throws {
        try Fixtures.require()
        let r = try recipe("kill", base: "minmax-w8a8")
        let ref = try quantize(r, "kill", workers: 0).sha
        let ep = "ipc://\(dir)/c.ipc", out = dir + "/q.safetensors"
        let c = try CLIRunner.start(["coordinator", Fixtures.vitTiny, "--data", Fixtures.even500Images, "--calib-offset", "0", "--calib", "8",
                                     "--recipe", r, "--out", out, "--bind", ep, "--expect-workers", "2", "--heartbeat", "0.5"],
                                    log: dir + "/coordinator.log")
        let ws = try (1...2).map { i in
            try CLIRunner.start(["worker", "--connect", ep, "--threads", "1", "--name", "w\(i)", "--wait", "60", "--once"], log: dir + "/worker\(i).log")
        }
        let log = { (try? String(contentsOfFile: self.dir + "/coordinator.log", encoding: .utf8)) ?? "" }
        try FileEvents.wait(for: "the fifth probe in the coordinator's log:\n" + log(), in: dir, seconds: 120) { log().contains("probe 5/") }
        kill(ws[1].processIdentifier, SIGKILL)
        XCTAssertEqual(CLIRunner.wait(c, seconds: 300), 0, log())
        XCTAssertFalse(log().contains("probe 62/62") && !log().contains("moves from w2"), "w2 died during the probes:\n" + log())
        XCTAssertTrue(log().contains("moves from w2"), log())
        XCTAssertEqual(try SHA256.hex(ofFile: out), ref)
        CLIRunner.wait(ws[0], seconds: 10)
    }

    /// The coordinator journals each finished probe: killed mid-probes and resumed, it answers
    /// those from the journal, sends the rest, and writes the uninterrupted run's bytes.
    func testAKilledCoordinatorResumesItsProbesToTheSameBytes() throws {
        try Fixtures.require()
        let r = try recipe("resume", base: "minmax-w8a8")
        let ref = try quantize(r, "resume", workers: 0).sha
        let ep = "ipc://\(dir)/c.ipc", out = dir + "/q.safetensors", journal = out + ".journal"
        func coordinator(_ extra: [String]) throws -> Process {
            try CLIRunner.start(["coordinator", Fixtures.vitTiny, "--data", Fixtures.even500Images, "--calib-offset", "0", "--calib", "8",
                                 "--recipe", r, "--out", out, "--bind", ep, "--expect-workers", "2", "--heartbeat", "0.5"] + extra,
                                log: dir + "/coordinator.log")
        }
        let log = { (try? String(contentsOfFile: self.dir + "/coordinator.log", encoding: .utf8)) ?? "" }
        let probes = { max(((try? String(contentsOfFile: journal, encoding: .utf8)) ?? "").split(separator: "\n").count - 1, 0) }
        let c1 = try coordinator([])
        let ws = try (1...2).map { i in
            try CLIRunner.start(["worker", "--connect", ep, "--threads", "1", "--name", "w\(i)", "--wait", "60", "--once"], log: dir + "/worker\(i).log")
        }
        try FileEvents.wait(for: "10 probes in \(journal)\n" + log(), in: dir, seconds: 120) { probes() >= 10 }
        kill(c1.processIdentifier, SIGKILL)
        c1.waitUntilExit()
        let kept = probes()
        XCTAssertLessThan(kept, 62, "killed during the probes")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        let c2 = try coordinator(["--resume"])
        XCTAssertEqual(CLIRunner.wait(c2, seconds: 300), 0, log())
        XCTAssertTrue(log().contains("resuming: \(kept) sensitivity probe(s) answered from"), log())
        XCTAssertEqual(try SHA256.hex(ofFile: out), ref)
        for w in ws { CLIRunner.wait(w, seconds: 10) }
    }

    func testBadCalibratorRecipesGiveOneLineNamingTheFileAndKey() throws {
        try Fixtures.require()
        let cases: [(String, [String])] = [
            ("activation_calibrator: kl\n", ["activation_calibrator", "max, percentile, entropy, mse"]),
            ("activation_calibrator: percentile\npercentile: 100.5\n", ["percentile", "(0, 100]"]),
            ("activation_calibrator: percentile\npercentile: 0\n", ["percentile", "(0, 100]"]),
            ("percentile: 99\n", ["percentile", "needs 'activation_calibrator: percentile'"]),
            ("keep_float: auto\n", ["keep_float", "auto needs 'target_agreement' or 'max_kl'"]),
            ("target_agreement: 0.99\n", ["target_agreement", "needs 'keep_float: auto'"]),
            ("keep_float: auto\ntarget_agreement: 1.5\n", ["target_agreement", "(0, 1]"]),
            ("weight_calibrator: entropy\n", ["weight_calibrator", "max, mse"]),
        ]
        for (i, (lines, needles)) in cases.enumerated() {
            let r = try recipe("bad\(i)", base: "minmax-w8a8", lines)
            let out = dir + "/bad\(i).safetensors"
            let run = try CLIRunner.run(arguments(r, out: out))
            XCTAssertEqual(run.status, 1, lines)
            let text = run.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertEqual(text.split(separator: "\n").count, 1, text)
            for n in needles + [r] { XCTAssertTrue(text.contains(n), "\(lines): '\(n)' not in: \(text)") }
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
        // An op the model does not have, named by the recipe: refused before anything is written.
        let r = try recipe("unknown-op", base: "minmax-w8a8", "keep_float_ops: [blocks.7.mlp.fc2, blocks.12.mlp.fc1]\n")
        let run = try CLIRunner.run(arguments(r, out: dir + "/u.safetensors"))
        XCTAssertEqual(run.status, 1)
        XCTAssertTrue(run.stderr.contains(r) && run.stderr.contains("keep_float_ops") && run.stderr.contains("'blocks.12.mlp.fc1'"), run.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/u.safetensors"))
        let search = try recipe("search", base: "ptq4vit-fast", "activation_calibrator: entropy\n")
        XCTAssertTrue(try CLIRunner.run(arguments(search, out: dir + "/s.safetensors")).stderr.contains("applies to method 'minmax'"))
    }
}
