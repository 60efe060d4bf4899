import Foundation
import VitqFormats
import VitqTestSupport
import XCTest

/// `vitq quantize` with a search recipe (stage 1 collect + stage 2 scale search) on the real
/// ViT-Tiny: a fast PTQ4ViT variant on 8 calibration images, its twin quantizers in the file,
/// its accuracy on held-out images, determinism, and stage-1 spilling giving the same bytes.
final class SearchCLITests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func quantize(_ out: String, extra: [String] = []) throws -> [String: Any] {
        let r = try CLIRunner.run(["quantize", Fixtures.vitTiny, "--data", Fixtures.even500Images, "--labels", Fixtures.even500Labels,
                                   "--calib-offset", "0", "--calib", "8", "--recipe", "ptq4vit-fast", "--out", out, "--json"] + extra)
        XCTAssertEqual(r.status, 0, r.stderr)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
    }

    func sha(_ path: String) throws -> String { SHA256.hex(of: try Data(contentsOf: URL(fileURLWithPath: path))) }

    func testFastPTQ4ViTQuantizesDeterministicallyAndSpillsToTheSameBytes() throws {
        try Fixtures.require()
        let a = dir + "/a.safetensors", b = dir + "/b.safetensors"
        let j = try quantize(a, extra: ["--eval-offset", "32", "--eval-limit", "96"])
        XCTAssertEqual(j["eval_images"] as? Int, 96)
        XCTAssertGreaterThanOrEqual(j["agreement"] as? Double ?? 0, 0.9, "ptq4vit-fast agreement with FP32 on 96 held-out images")
        XCTAssertGreaterThan(j["candidate_evaluations"] as? Int ?? 0, 0)
        // Twin quantizers are stored: the GELU output feeding fc2 and the softmax probabilities.
        let f = try TensorFile(path: a)
        let ops = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(f.metadata["ops"]!.utf8)) as? [String: Any])
        let fc2 = try XCTUnwrap((ops["blocks.3.mlp.fc2"] as? [String: Any])?["input"] as? [String: Any])
        XCTAssertEqual(fc2["kind"] as? String, "twin")
        XCTAssertEqual(fc2["twin_kind"] as? String, "gelu")
        let pv = try XCTUnwrap((ops["blocks.3.attn.matmul_pv"] as? [String: Any])?["a"] as? [String: Any])
        XCTAssertEqual(pv["twin_kind"] as? String, "softmax")
        XCTAssertEqual(try f.info("blocks.3.attn.matmul_pv.a_shift").shape, [3])
        // Again with stage 1 spilled to memory-mapped files: the same bytes, and no file left behind.
        let spill = dir + "/spill"
        try FileManager.default.createDirectory(atPath: spill, withIntermediateDirectories: true)
        let spilled = try quantize(b, extra: ["--memory-budget", "16", "--spill-dir", spill])
        XCTAssertEqual(try sha(a), try sha(b))
        // 8 images of ViT-Tiny's stage 1 are far more than 16 MiB: the rest is reported as spilled.
        XCTAssertEqual(j["bytes_spilled"] as? Int, 0)
        XCTAssertGreaterThan(spilled["bytes_spilled"] as? Int ?? 0, 50 << 20, "\(spilled)")
        try ShippedRecipeBytesTests.assertExpected(a, ShippedRecipeBytesTests.fast8, "in-process")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: spill), [])
    }
}
