import Foundation
import VitqFormats
import VitqTestSupport
import XCTest

/// `vitq quantize` on the real ViT-Tiny under the accuracy protocol (calibrate on rows 0..31,
/// evaluate on rows 32..499), the quantized file's size, determinism and Python readability,
/// and the int8 engine against fake quantization on the 468 evaluation images.
final class QuantizeCLITests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func quantize(_ out: String, extra: [String] = []) throws -> [String: Any] {
        let r = try CLIRunner.run(["quantize", Fixtures.vitTiny, "--data", Fixtures.even500Images, "--labels", Fixtures.even500Labels,
                                   "--calib-offset", "0", "--calib", "32", "--recipe", "minmax-w8a8", "--out", out, "--json"] + extra)
        XCTAssertEqual(r.status, 0, r.stderr)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
    }

    func testMinMaxW8A8AccuracyProtocolSizeAndDeterminism() throws {
        try Fixtures.require()
        let a = dir + "/a.safetensors", b = dir + "/b.safetensors"
        let j = try quantize(a, extra: ["--eval-offset", "32"])
        XCTAssertEqual(j["eval_images"] as? Int, 468)
        XCTAssertEqual(j["fp32_top1"] as? Double ?? 0, 387.0 / 468, accuracy: 1e-9)
        let drop = try XCTUnwrap(j["drop_points"] as? Double)
        XCTAssertLessThanOrEqual(drop, 1.5, "minmax-w8a8 drop")
        XCTAssertGreaterThanOrEqual(j["agreement"] as? Double ?? 0, 0.9)
        XCTAssertLessThanOrEqual(j["size_ratio"] as? Double ?? 1, 0.30)
        // A second run writes the same bytes.
        _ = try quantize(b)
        XCTAssertEqual(SHA256.hex(of: try Data(contentsOf: URL(fileURLWithPath: a))),
                       SHA256.hex(of: try Data(contentsOf: URL(fileURLWithPath: b))))
        XCTAssertEqual(try TensorFile(path: a).metadata["source_sha256"], try SHA256.hex(ofFile: Fixtures.vitTiny))
        // Python's safetensors opens it and sees int8 weights and float scales.
        let py = Process()
        py.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        py.arguments = ["python3", "-c", """
            import sys; from safetensors import safe_open
            f = safe_open(sys.argv[1], "np"); m = f.metadata()
            assert m["format"] == "vitq.qmodel" and m["format_version"] == "1", m
            w = f.get_tensor("blocks.0.attn.qkv.weight"); s = f.get_tensor("blocks.0.attn.qkv.weight_scale")
            assert str(w.dtype) == "int8" and w.shape == (576, 192) and s.shape == (576,), (w.dtype, w.shape, s.shape)
            print("ok")
            """, a]
        let pipe = Pipe()
        py.standardOutput = pipe
        try py.run(); py.waitUntilExit()
        XCTAssertEqual(py.terminationStatus, 0, "python safetensors could not read the quantized file")
        XCTAssertEqual(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self), "ok\n")

        // The int8 engine against fake quantization on the evaluation images.
        let (integer, fakeQuant) = try integerAndFakeQuantLogits(a, in: dir)
        let logits = [integer, fakeQuant]
        let n = 468, c = 1000
        func argmax(_ l: [Float], _ i: Int) -> Int { (0..<c).max { l[i * c + $0] < l[i * c + $1] }! }
        let same = (0..<n).filter { argmax(logits[0], $0) == argmax(logits[1], $0) }.count
        XCTAssertGreaterThanOrEqual(Double(same) / Double(n), 0.995, "engine vs fake-quant top-1 agreement")
        // Stated tolerance: none. The reference redoes the integer sums exactly, so the logits are bit-identical.
        XCTAssertEqual(logits[0].map(\.bitPattern), logits[1].map(\.bitPattern), "engine vs fake-quant logits")
    }

    func testBadRecipeAndQuantizedFileErrors() throws {
        try Fixtures.require()
        let recipe = dir + "/bad.yaml"
        try "name: bad\nweight_bitz: 8\n".write(toFile: recipe, atomically: true, encoding: .utf8)
        let out = dir + "/never.safetensors"
        let r = try CLIRunner.run(["quantize", Fixtures.deitMicro, "--data", Fixtures.even500Images, "--calib", "2",
                                   "--recipe", recipe, "--out", out])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains(recipe) && r.stderr.contains("weight_bitz"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no partial output")
    }
}
