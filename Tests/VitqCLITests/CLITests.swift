import Foundation
import VitqFormats
import VitqTestSupport
import XCTest

/// The `vitq` executable end to end: the fixture's accuracy, JSON output and bad-input handling.
final class CLITests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func json(_ s: String) throws -> [String: Any] {
        try XCTUnwrap(JSONSerialization.jsonObject(with: Data(s.utf8)) as? [String: Any], s)
    }

    func testEvalOfViTTinyOnEven500MatchesTheReference() throws {
        try Fixtures.require()
        let logits = dir + "/logits.npy"
        let r = try CLIRunner.run(["eval", Fixtures.vitTiny, "--data", Fixtures.even500Images, "--labels", Fixtures.even500Labels,
                                   "--dump-logits", logits, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try json(r.stdout)
        XCTAssertEqual(j["top1_correct"] as? Int, 413)
        XCTAssertEqual(j["top1"] as? Double, 0.826)
        XCTAssertEqual(j["images"] as? Int, 500)
        XCTAssertNotNil(j["top5"] as? Double)
        XCTAssertGreaterThan(j["images_per_second"] as? Double ?? 0, 0)
        let ours = try NpyArray(path: logits).floats()
        let ref = try NpyArray(path: Fixtures.even500RefLogits).floats()
        XCTAssertEqual(ours.count, 500 * 1000)
        let maxDiff = zip(ours, ref).map { abs($0 - $1) }.max()!
        XCTAssertLessThanOrEqual(maxDiff, 1e-3)
    }

    func testEvalOffsetAndLimit() throws {
        try Fixtures.require()
        let r = try CLIRunner.run(["eval", Fixtures.vitTiny, "--data", Fixtures.even500Images, "--labels", Fixtures.even500Labels,
                                   "--offset", "32", "--limit", "10", "--batch", "4", "--threads", "1"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("rows 32..<42"), r.stdout)
    }

    /// Runs vitq expecting failure: non-zero exit, one line on stderr mentioning every needle, no stdout.
    func assertFails(_ args: [String], mentions needles: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try CLIRunner.run(args)
        XCTAssertNotEqual(r.status, 0, file: file, line: line)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "one line: \(r.stderr)", file: file, line: line)
        for n in needles { XCTAssertTrue(r.stderr.contains(n), "'\(r.stderr)' should mention '\(n)'", file: file, line: line) }
        XCTAssertFalse(r.stderr.contains("Fatal error"), file: file, line: line)
    }

    func testBadInputsGiveOneClearLine() throws {
        try Fixtures.require()
        let good = try Data(contentsOf: URL(fileURLWithPath: Fixtures.deitMicro))
        let data = Fixtures.even500Images
        // Truncated model.
        let truncated = dir + "/truncated.safetensors"
        FileManager.default.createFile(atPath: truncated, contents: good.prefix(good.count / 2))
        try assertFails(["eval", truncated, "--data", data, "--limit", "1"], mentions: [truncated])
        // Byte ranges beyond the file, unknown dtype: rewrite the header.
        let headerLen = Int(good.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let header = String(decoding: good[8..<(8 + headerLen)], as: UTF8.self)
        func withHeader(_ h: String, _ name: String) -> String {
            var d = Data()
            withUnsafeBytes(of: UInt64(h.utf8.count).littleEndian) { d.append(contentsOf: $0) }
            d.append(Data(h.utf8)); d.append(good[(8 + headerLen)...])
            let p = dir + "/" + name
            FileManager.default.createFile(atPath: p, contents: d)
            return p
        }
        let beyond = withHeader(header.replacingOccurrences(of: "[0,256]", with: "[0,99999999]").replacingOccurrences(of: "[0, 256]", with: "[0, 99999999]"), "beyond.safetensors")
        try assertFails(["eval", beyond, "--data", data, "--limit", "1"], mentions: [beyond])
        let dtype = withHeader(header.replacingOccurrences(of: "\"F32\"", with: "\"Q4\""), "dtype.safetensors")
        try assertFails(["inspect", dtype], mentions: [dtype, "Q4"])
        // Missing key and mis-shaped key (no sidecar: the copies are in a temp dir).
        let src = try TensorFile(path: Fixtures.deitMicro)
        func rewrite(_ name: String, _ edit: (inout SafeTensorsWriter, String) throws -> Bool) throws -> String {
            var w = SafeTensorsWriter()
            w.metadata = src.metadata
            for n in src.names where try edit(&w, n) { w.add(n, try src.floatTensor(n)) }
            let p = dir + "/" + name
            try w.write(to: p)
            return p
        }
        let missing = try rewrite("missing.safetensors") { _, n in n != "norm.bias" }
        try assertFails(["eval", missing, "--data", data, "--limit", "1"], mentions: [missing, "norm.bias"])
        let misshaped = try rewrite("misshaped.safetensors") { w, n in
            if n == "head.bias" { w.add(n, shape: [999], floats: Array(repeating: 0, count: 999)); return false }
            return true
        }
        try assertFails(["eval", misshaped, "--data", data, "--limit", "1"], mentions: [misshaped, "head.bias"])
        // Images of the wrong dtype, labels of the wrong dtype.
        try NpyWriter.write(floats: Array(repeating: 0, count: 2 * 224 * 224 * 3), shape: [2, 224, 224, 3], to: dir + "/float.npy")
        try assertFails(["eval", Fixtures.deitMicro, "--data", dir + "/float.npy"], mentions: [dir + "/float.npy", "<f4"])
        try assertFails(["eval", Fixtures.deitMicro, "--data", data, "--labels", dir + "/float.npy"], mentions: [dir + "/float.npy"])
        // A non-image file in an ImageFolder.
        try FileManager.default.createDirectory(atPath: dir + "/folder/n01440764", withIntermediateDirectories: true)
        try "not an image".write(toFile: dir + "/folder/n01440764/readme.jpg", atomically: true, encoding: .utf8)
        try assertFails(["eval", Fixtures.deitMicro, "--data", dir + "/folder"], mentions: [dir + "/folder/n01440764/readme.jpg"])
        // A bad config key beside the model (a copy without metadata, so the sidecar is read).
        var w = SafeTensorsWriter()
        for n in src.names { w.add(n, try src.floatTensor(n)) }
        try w.write(to: dir + "/cfg.safetensors")
        try #"{"timm_class": "VisionTransformerDistilled", "config": {"num_head": 2}}"#.write(toFile: dir + "/cfg.json", atomically: true, encoding: .utf8)
        try assertFails(["inspect", dir + "/cfg.safetensors"], mentions: [dir + "/cfg.json", "num_head"])
        // No partial output: a failed eval leaves no logits file.
        try assertFails(["eval", missing, "--data", data, "--dump-logits", dir + "/never.npy"], mentions: [missing])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/never.npy"))
    }

    func testVersionReportsLinkedLibraries() throws {
        let r = try CLIRunner.run(["version"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("libzmq    4."), r.stdout)
        XCTAssertTrue(r.stdout.contains("openblas"), r.stdout)
        XCTAssertTrue(r.stdout.contains("cpu flags"), r.stdout)
        // The kernel level is capped by VITQ_ISA; a level that does not exist is one line, not ignored.
        let capped = try CLIRunner.run(["version"], environment: ["VITQ_ISA": "scalar"])
        XCTAssertTrue(capped.stdout.contains("kernels   scalar"), capped.stdout)
        let wrong = try CLIRunner.run(["version"], environment: ["VITQ_ISA": "avx3"])
        XCTAssertNotEqual(wrong.status, 0)
        XCTAssertEqual(wrong.stderr, "vitq: error: VITQ_ISA=avx3: expected scalar, avx2, avxvnni or avx512vnni\n")
    }

    func testInspectSynthAndBenchJSON() throws {
        try Fixtures.require()
        let i = try CLIRunner.run(["inspect", Fixtures.vitTiny])
        XCTAssertEqual(i.status, 0, i.stderr)
        XCTAssertTrue(i.stdout.contains("parameters  5717416"), i.stdout)
        XCTAssertTrue(i.stdout.contains("heads 3"), i.stdout)
        XCTAssertTrue(i.stdout.contains("blocks.11.mlp.fc2.weight"), i.stdout)
        let out = dir + "/s.safetensors"
        let s = try CLIRunner.run(["synth", "--arch", "vit-small", "--out", out])
        XCTAssertEqual(s.status, 0, s.stderr)
        XCTAssertTrue(try CLIRunner.run(["inspect", out]).stdout.contains("embed 384, depth 12, heads 6"))
        let b = try CLIRunner.run(["bench", "fp32", "--model", Fixtures.deitMicro, "--batch", "2", "--iterations", "1", "--json"])
        XCTAssertEqual(b.status, 0, b.stderr)
        let j = try json(b.stdout)
        let configs = try XCTUnwrap(j["configs"] as? [[String: Any]])
        XCTAssertEqual(configs.first?["batch"] as? Int, 2)
        XCTAssertGreaterThan(configs.first?["ratio"] as? Double ?? 0, 0)
    }
}
