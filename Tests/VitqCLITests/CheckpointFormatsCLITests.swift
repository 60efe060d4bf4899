import Foundation
import VitqFormats
import VitqTestSupport
import XCTest

/// The checkpoint formats users have, through the CLI (issue 18): the real CIFAR-10 ViT as a
/// PyTorch `.pth` with its CIFAR binary batch.
final class CheckpointFormatsCLITests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testTheCifarPthEvaluatesToTheReferenceLogitsAndItsTop1() throws {
        try Fixtures.require()
        let dump = dir + "/logits.npy"
        let j = try CLIRunner.run(["eval", Fixtures.cifarViT, "--data", Fixtures.cifarImages, "--dump-logits", dump, "--json"]).jsonObject()
        XCTAssertEqual(j["images"] as? Int, 932)
        // SOURCES.md §3: 70.2% on these 932 images.
        XCTAssertEqual(j["top1_correct"] as? Int, 654)
        let logits = try NpyArray(path: dump, expect: .float32).floats()
        let refData = try Data(contentsOf: URL(fileURLWithPath: Fixtures.cifarRefLogits))
        let ref = refData.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(logits.count, 932 * 10)
        XCTAssertLessThan(relativeError(logits, ref), 1e-4, "vitq against the numpy reference forward")
        func argmax(_ a: [Float], _ row: Int) -> Int { (0..<10).max { a[row * 10 + $0] < a[row * 10 + $1] }! }
        XCTAssertEqual((0..<932).filter { argmax(logits, $0) != argmax(ref, $0) }, [], "the same top-1 on every image")
    }

    func testInspectNamesTheFormatAndFamilyOfEveryKindOfFile() throws {
        try Fixtures.require()
        let pth = try CLIRunner.run(["inspect", Fixtures.cifarViT, "--json"]).jsonObject()
        XCTAssertEqual(pth["format"] as? String, "pytorch")
        XCTAssertEqual(pth["family"] as? String, "torch-vit")
        XCTAssertEqual(pth["parameters"] as? Int, 811_146)
        let timm = try CLIRunner.run(["inspect", Fixtures.vitTiny, "--json"]).jsonObject()
        XCTAssertEqual(timm["format"] as? String, "safetensors")
        XCTAssertEqual(timm["family"] as? String, "vit")
        let text = try CLIRunner.run(["inspect", Fixtures.cifarViT])
        XCTAssertEqual(text.status, 0, text.stderr)
        XCTAssertTrue(text.stdout.contains("format      PyTorch state dict"), text.stdout)
    }

    /// `ptq4vit-fast` with vitq-w6a6's channel smoothing (the ReLU outputs folded into fc1, the
    /// head's LayerNorm centred and smoothed) on the CIFAR ViT: calibrated on the first 32
    /// images, evaluated on the other 900, and the same bytes from two workers (which load the
    /// same .pth and smooth it with the JOB's ranges) as in one process.
    func testTheCifarPthQuantizesAndTwoWorkersWriteTheSameBytes() throws {
        try Fixtures.require()
        let recipe = dir + "/fast-smooth.yaml"
        try "name: fast-smooth\nbase: ptq4vit-fast\nsmooth_alpha: 0.5\nsmooth_center: true\ngelu_smooth_alpha: 0.5\n"
            .write(toFile: recipe, atomically: true, encoding: .utf8)
        let args = ["quantize", Fixtures.cifarViT, "--data", Fixtures.cifarImages, "--calib-offset", "0", "--calib", "32",
                    "--recipe", recipe, "--json"]
        let one = dir + "/one.safetensors", two = dir + "/two.safetensors"
        let j = try CLIRunner.run(args + ["--out", one, "--eval-offset", "32"]).jsonObject()
        XCTAssertEqual(j["eval_images"] as? Int, 900)
        let top1 = try XCTUnwrap(j["top1"] as? Double), fp = try XCTUnwrap(j["fp32_top1"] as? Double)
        XCTAssertGreaterThan(top1, fp - 0.03, "int8 within 3 points of FP32 on 900 images")
        XCTAssertGreaterThan(try XCTUnwrap(j["agreement"] as? Double), 0.9)
        let w = try CLIRunner.run(args + ["--out", two, "--workers", "2"])
        XCTAssertEqual(w.status, 0, w.stderr)
        XCTAssertEqual(try SHA256.hex(ofFile: two), try SHA256.hex(ofFile: one), "2 workers write the in-process bytes")
        let q = try CLIRunner.run(["inspect", one, "--json"]).jsonObject()
        XCTAssertEqual(q["format"] as? String, "vitq-quantized")
        XCTAssertEqual(q["family"] as? String, "torch-vit")
        let e = try CLIRunner.run(["eval", one, "--data", Fixtures.cifarImages, "--offset", "32", "--json"]).jsonObject()
        XCTAssertEqual(e["top1"] as? Double, top1, "eval of the written file gives quantize's top-1")
    }
}
