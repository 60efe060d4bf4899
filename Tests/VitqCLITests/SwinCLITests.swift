import Foundation
import VitqFormats
import VitqTestSupport
import XCTest

/// PTQ4ViT on the micro Swin fixture through the CLI, as issue 6 accepts it: `ptq4vit-w8a8`
/// calibrated on images 0..31, the mean cosine of int8 and FP32 logits on the 64 images after
/// them, and the same bytes with two workers as in one process.
final class SwinCLITests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testPtq4vitW8A8OnMicroSwinTracksFloatAndIsTheSameWithTwoWorkers() throws {
        try Fixtures.require()
        // No labels: a random-init model's top-1 means nothing; the comparison with FP32 needs none.
        let args = ["quantize", Fixtures.swinMicro, "--data", Fixtures.even500Images,
                    "--calib-offset", "0", "--calib", "32", "--recipe", "ptq4vit-w8a8", "--json"]
        let inProcess = dir + "/in-process.safetensors"
        let r = try CLIRunner.run(args + ["--out", inProcess, "--eval-offset", "32", "--eval-limit", "64"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let j = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout + r.stderr)
        XCTAssertEqual(j["eval_images"] as? Int, 64)
        XCTAssertTrue(j["top1"] is NSNull, "no top-1 without labels")
        XCTAssertEqual(try XCTUnwrap(j["agreement"] as? Double), 1, accuracy: 0.05)
        let cosine = try XCTUnwrap(j["mean_logit_cosine"] as? Double)
        XCTAssertGreaterThanOrEqual(cosine, 0.99, "mean cosine of int8 and FP32 logits on 64 images")
        XCTAssertLessThan(cosine, 1, "quantization changes the logits")

        let twoWorkers = dir + "/two-workers.safetensors"
        let w = try CLIRunner.run(args + ["--out", twoWorkers, "--workers", "2"])
        XCTAssertEqual(w.status, 0, w.stderr)
        XCTAssertEqual(try SHA256.hex(ofFile: twoWorkers), try SHA256.hex(ofFile: inProcess), "2 workers write the in-process bytes")
        try ShippedRecipeBytesTests.assertExpected(inProcess, ShippedRecipeBytesTests.swinPtq4vit, "in-process")
    }

    func testChannelSmoothingIsRefusedForSwinInOneLine() throws {
        try Fixtures.require()
        let recipe = dir + "/smooth.yaml"
        try "name: smooth\nbase: ptq4vit-fast\nsmooth_alpha: 0.5\n".write(toFile: recipe, atomically: true, encoding: .utf8)
        let out = dir + "/never.safetensors"
        let r = try CLIRunner.run(["quantize", Fixtures.swinMicro, "--data", Fixtures.even500Images, "--calib", "8", "--recipe", recipe, "--out", out])
        XCTAssertEqual(r.status, 1)
        XCTAssertTrue(r.stderr.contains("smooth_alpha") && r.stderr.contains("Swin"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no partial output")
    }

    /// Block reconstruction is built for ViT/DeiT: a Swin gets one line before any work, in
    /// process and with workers.
    func testReconstructionIsRefusedForSwinInOneLine() throws {
        try Fixtures.require()
        let recipe = dir + "/recon.yaml"
        try "name: recon\nbase: ptq4vit-fast\nreconstruction: parallel\n".write(toFile: recipe, atomically: true, encoding: .utf8)
        let out = dir + "/never.safetensors"
        for extra in [[], ["--workers", "2"]] {
            let r = try CLIRunner.run(["quantize", Fixtures.swinMicro, "--data", Fixtures.even500Images, "--calib", "8", "--recipe", recipe, "--out", out] + extra)
            XCTAssertEqual(r.status, 1)
            XCTAssertTrue(r.stderr.contains("reconstruction") && r.stderr.contains("Swin"), r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no partial output")
        }
    }

    /// A Swin whose config is only in the JSON beside it: workers get only the weights file, so
    /// the JOB carries the coordinator's config; the output equals the in-process run's.
    func testSwinWithASidecarConfigRunsOnWorkers() throws {
        try Fixtures.require()
        let src = try TensorFile(path: Fixtures.swinMicro)
        var w = SafeTensorsWriter()
        for name in src.names {
            let info = try src.info(name)
            w.add(name, dtype: info.dtype, shape: info.shape, bytes: Data(try src.rawBytes(name)))
        }
        let model = dir + "/swin_no_metadata.safetensors"
        try w.write(to: model)
        XCTAssertNil(try TensorFile(path: model).metadata["timm_config"])
        let sidecar = Fixtures.swinMicro.replacingOccurrences(of: ".safetensors", with: ".json")
        try FileManager.default.copyItem(atPath: sidecar, toPath: dir + "/swin_no_metadata.json")
        var shas: [String] = []
        for workers in [0, 1] {
            let out = dir + "/w\(workers).safetensors"
            let r = try CLIRunner.run(["quantize", model, "--data", Fixtures.even500Images, "--calib", "8", "--recipe", "ptq4vit-fast",
                                       "--out", out, "--workers", "\(workers)"])
            XCTAssertEqual(r.status, 0, r.stderr)
            shas.append(try SHA256.hex(ofFile: out))
        }
        XCTAssertEqual(shas[0], shas[1])
    }
}
