import Foundation
import VitqFormats
import VitqTestSupport
import XCTest

/// `vitq export` checked by ONNX Runtime and `onnx.checker` (Deploy/onnx-run.py, which Deploy/test.sh
/// installs onnx and onnxruntime for): the fp32 graph gives vitq's fp32 logits, the integer graph
/// vitq's reference integer arithmetic.
final class ExportCLITests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    static let images = 16, offset = 32

    /// Exports `model`, dumps vitq's logits of the same images with `evalFlags` and `environment`, and
    /// returns onnx-run.py's report comparing ORT's logits with them.
    func compare(_ model: String, format: String = "integer", evalFlags: [String] = [], environment: [String: String] = [:]) throws -> [String: Any] {
        let onnx = dir + "/m.onnx", ref = dir + "/vitq.npy"
        let e = try CLIRunner.run(["export", model, "--out", onnx, "--format", format, "--json"])
        XCTAssertEqual(e.status, 0, e.stderr)
        let written = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(e.stdout.utf8)) as? [String: Any], e.stdout)
        XCTAssertEqual(written["bytes"] as? Int, (try FileManager.default.attributesOfItem(atPath: onnx)[.size] as? Int))
        let v = try CLIRunner.run(["eval", model, "--data", Fixtures.even500Images, "--offset", "\(Self.offset)", "--limit", "\(Self.images)",
                                   "--dump-logits", ref] + evalFlags, environment: environment)
        XCTAssertEqual(v.status, 0, v.stderr)
        let py = Process(), pipe = Pipe(), err = Pipe()
        py.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        py.arguments = ["python3", Fixtures.packageRoot + "/Deploy/onnx-run.py", onnx, "--data", Fixtures.even500Images,
                        "--offset", "\(Self.offset)", "--limit", "\(Self.images)", "--reference", ref]
        py.standardOutput = pipe; py.standardError = err
        try py.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        py.waitUntilExit()
        XCTAssertEqual(py.terminationStatus, 0, String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: out) as? [String: Any])
    }

    func testFloatExportsGiveVitqsFP32Logits() throws {
        try Fixtures.require()
        for model in [Fixtures.vitTiny, Fixtures.deitMicro, Fixtures.swinMicro] {
            let r = try compare(model)
            XCTAssertEqual(r["checker"] as? String, "passed")
            XCTAssertEqual(r["images"] as? Int, Self.images)
            // Measured 1.3e-6 on ViT-Tiny, 6.0e-7 on the micro Swin: the float kernels differ only in their last bits.
            XCTAssertLessThanOrEqual(try XCTUnwrap(r["max_relative_difference"] as? Double), 1e-5, model)
            XCTAssertEqual(r["top1_agreement"] as? Double, 1, model)
            let meta = try XCTUnwrap(r["metadata"] as? [String: String])
            XCTAssertEqual(meta["source_sha256"], try SHA256.hex(ofFile: model))
            XCTAssertEqual(meta["format"], "fp32")
            XCTAssertNotNil(meta["vitq_version"])
        }
    }

    /// Static per-tensor inputs with an op in float (minmax-w8a8), twin softmax and twin GELU
    /// inputs (ptq4vit-fast), and dynamic per-token inputs: ORT's logits of the integer export
    /// against vitq's fake-quant engine on its scalar reference kernels (`VITQ_FORCE_SCALAR`: expf
    /// and erff, the float functions nearest ORT's). Not yet the 1e-5: a last-bit difference
    /// in a float part (LayerNorm, softmax, GELU) flips a rounding in some quantizer, and the flips
    /// compound through the blocks. Measured on 16 images: 1–2% median relative difference, the
    /// same size as vitq's own AVX2 kernels against its scalar ones (3.6%); with one op quantized,
    /// 1e-6 to 1e-4. What this asserts: the checker, the provenance, and the same top-1, for the
    /// integer and the QDQ graph.
    func testIntegerExportIsVitqsIntegerArithmetic() throws {
        try Fixtures.require()
        let perToken = dir + "/per-token.yaml"
        try "name: fast-per-token\nbase: ptq4vit-fast\nweight_granularity: per_channel\nactivation_granularity: per_token\n"
            .write(toFile: perToken, atomically: true, encoding: .utf8)
        try checkQuantizedExports(Fixtures.vitTiny, recipes: ["minmax-w8a8", "ptq4vit-fast", perToken])
    }

    /// The same for Swin (shifted windows, relative position bias and mask, patch merging):
    /// measured on 16 images 0.3–0.9% median relative difference (integer), 0.4–1.3% (QDQ).
    func testSwinQuantizedExportsAreVitqsArithmetic() throws {
        try Fixtures.require()
        try checkQuantizedExports(Fixtures.swinMicro, recipes: ["minmax-w8a8", "ptq4vit-fast", "vitq-w8a8"])
    }

    func checkQuantizedExports(_ model: String, recipes: [String]) throws {
        for recipe in recipes {
            let q = dir + "/q.safetensors"
            let r = try CLIRunner.run(["quantize", model, "--data", Fixtures.even500Images, "--calib", "8", "--recipe", recipe, "--out", q])
            XCTAssertEqual(r.status, 0, r.stderr)
            for format in ["integer", "qdq"] {
                let c = try compare(q, format: format, evalFlags: ["--engine", "fake-quant"], environment: ["VITQ_FORCE_SCALAR": "1"])
                XCTAssertEqual(c["checker"] as? String, "passed")
                XCTAssertLessThanOrEqual(try XCTUnwrap(c["median_relative_difference"] as? Double), 0.05, "\(recipe) \(format)")
                XCTAssertGreaterThanOrEqual(try XCTUnwrap(c["top1_agreement"] as? Double), 15.0 / 16, "\(recipe) \(format)")
                let meta = try XCTUnwrap(c["metadata"] as? [String: String])
                XCTAssertEqual(meta["source_sha256"], try SHA256.hex(ofFile: model))
                XCTAssertEqual(meta["format"], format)
                XCTAssertTrue(meta["recipe"]?.contains("\"method\"") ?? false, "the recipe travels with the model")
            }
        }
    }

    func testExportErrorsGiveOneLineAndNoFile() throws {
        try Fixtures.require()
        let out = dir + "/never.onnx"
        let cases: [([String], String)] = [
            ([Fixtures.cifarViT, "--out", out], "torch-vit"),
            ([Fixtures.vitTiny, "--out", out, "--opset", "16"], "--opset 16"),
            ([Fixtures.vitTiny, "--out", dir + "/missing/m.onnx"], "missing"),
            ([Fixtures.vitTiny, "--out", Fixtures.vitTiny], "refusing to overwrite"),
        ]
        for (args, word) in cases {
            let r = try CLIRunner.run(["export"] + args)
            XCTAssertNotEqual(r.status, 0, "\(args)")
            XCTAssertTrue(r.stderr.contains(word), "\(args): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
    }
}
