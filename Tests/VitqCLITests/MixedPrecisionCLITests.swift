import Foundation
import VitqFormats
import VitqTestSupport
import XCTest

/// Mixed precision end to end on the real ViT-Tiny, 8 calibration images in shards of 4, a small
/// search at 4 and 8 bits: the allocation meets its budget, the file records it and packs its
/// 4-bit weights (which Python's safetensors reads), 2 and 4 workers write the in-process bytes,
/// the integer engine equals fake quantization on the 468 evaluation images, and bad keys get one line.
final class MixedPrecisionCLITests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func recipe(_ name: String, _ lines: String) throws -> String {
        let path = dir + "/\(name).yaml"
        try "name: \(name)\nbase: ptq4vit-fast\nshard_images: 4\nsearch_candidates: 8\n\(lines)".write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func arguments(_ recipe: String, out: String) -> [String] {
        ["quantize", Fixtures.vitTiny, "--data", Fixtures.even500Images, "--calib-offset", "0", "--calib", "8", "--recipe", recipe, "--out", out]
    }

    func testFisherAllocationMeetsItsBudgetAndTwoAndFourWorkersWriteTheSameBytes() throws {
        try Fixtures.require()
        let r = try recipe("mp", "mixed_precision: fisher\ncandidate_bits: [4, 8]\naverage_bits: 6\n")
        let out0 = dir + "/mp-0.safetensors"
        let one = try CLIRunner.run(arguments(r, out: out0) + ["--json", "--labels", Fixtures.even500Labels, "--eval-offset", "32", "--eval-limit", "16"])
        XCTAssertEqual(one.status, 0, one.stderr)
        let mp = try XCTUnwrap(try one.jsonObject()["mixed_precision"] as? [String: Any])
        let modules = try XCTUnwrap(mp["modules"] as? [[String: Any]])
        XCTAssertEqual(modules.count, 26, "patch embedding, 12 MSA, 12 MLP, head")
        let w = try XCTUnwrap(mp["average_weight_bits"] as? Double), a = try XCTUnwrap(mp["average_activation_bits"] as? Double)
        XCTAssertLessThanOrEqual(w, 6); XCTAssertLessThanOrEqual(a, 6)
        let bits = modules.compactMap { $0["bits"] as? Int }
        XCTAssertTrue(bits.contains(4) && bits.contains(8), "a budget between the widths mixes them: \(bits)")
        // The weight average recomputed from the modules.
        let params = modules.compactMap { $0["weight_parameters"] as? Int }
        let avg = Double(zip(params, bits).reduce(0) { $0 + $1.0 * $1.1 }) / Double(params.reduce(0, +))
        XCTAssertEqual(avg, w, accuracy: 1e-12)
        XCTAssertGreaterThanOrEqual((mp["frontier"] as? [Any])?.count ?? 0, 2)
        // The report's charts hold the allocation's numbers: the frontier, the chosen point, each module's width.
        let log = dir + "/mp.json", html = dir + "/mp.html"
        try one.stdout.write(toFile: log, atomically: true, encoding: .utf8)
        let rep = try CLIRunner.run(["report", out0, "--log", log, "--out", html])
        XCTAssertEqual(rep.status, 0, rep.stderr)
        let page = try String(contentsOfFile: html, encoding: .utf8)
        let frontier = try XCTUnwrap(mp["frontier"] as? [[String: Double]])
        XCTAssertEqual(reportMarks(page, "frontier").map { [Double($0["bits"]!)!, Double($0["omega"]!)!] },
                       frontier.map { [$0["average_weight_bits"]!, $0["omega"]!] })
        XCTAssertEqual(reportMarks(page, "chosen").map { [Double($0["bits"]!)!, Double($0["omega"]!)!] }, [[w, try XCTUnwrap(mp["omega"] as? Double)]])
        XCTAssertEqual(reportMarks(page, "module").map { $0["bits"].flatMap(Int.init)! }, bits)
        XCTAssertEqual(reportMarks(page, "measured").map { Double($0["top1"]!)! }, [try XCTUnwrap(try one.jsonObject()["top1"] as? Double)])
        // The file: the allocation in the metadata, 4-bit modules packed.
        let f = try TensorFile(path: out0)
        XCTAssertNotNil(f.metadata["mixed_precision"])
        for m in modules where m["bits"] as? Int == 4 {
            let name = m["module"] as! String
            let op = name.hasSuffix(".attn") ? name + ".qkv" : name.hasSuffix(".mlp") ? name + ".fc1" : name
            XCTAssertEqual(try f.info(op + ".weight").dtype, .u8, op)
        }
        for workers in [2, 4] {
            let out = dir + "/mp-\(workers).safetensors"
            let run = try CLIRunner.run(arguments(r, out: out) + ["--workers", "\(workers)"])
            XCTAssertEqual(run.status, 0, run.stderr)
            XCTAssertEqual(try SHA256.hex(ofFile: out), try SHA256.hex(ofFile: out0), "\(workers) workers write the in-process bytes")
        }
        // Python's safetensors opens the file and sees a packed 4-bit weight as uint8, two per byte.
        let packed = try XCTUnwrap(modules.lazy.filter { $0["bits"] as? Int == 4 }.compactMap { $0["module"] as? String }
            .first { $0.hasSuffix(".attn") || $0.hasSuffix(".mlp") }, "a 4-bit MSA or MLP module")
        let (op, rows) = packed.hasSuffix(".attn") ? (packed + ".qkv", 576) : (packed + ".fc1", 768)
        let py = try PythonImages.run("""
            from safetensors import safe_open
            f = safe_open("\(out0)", "np")
            w = f.get_tensor("\(op).weight")
            assert f.metadata()["format"] == "vitq.qmodel" and str(w.dtype) == "uint8" and w.shape == (\(rows), 96), (w.dtype, w.shape)
            print("ok")
            """, in: dir)
        XCTAssertEqual(py, "ok\n")
        // The integer engine equals the fake-quant reference bit for bit on the mixed file.
        let (integer, fakeQuant) = try integerAndFakeQuantLogits(out0, in: dir)
        XCTAssertEqual(integer.map(\.bitPattern), fakeQuant.map(\.bitPattern), "engine vs fake-quant logits on a mixed-precision file")
    }

    func testBadMixedPrecisionRecipesGiveOneLineNamingTheFileAndKey() throws {
        try Fixtures.require()
        let cases: [(String, [String])] = [
            ("mixed_precision: hessian\n", ["mixed_precision", "nuclear, fisher"]),
            ("mixed_precision: nuclear\naverage_bits: 9\n", ["average_bits", "4...8"]),
            ("mixed_precision: nuclear\ncandidate_bits: [8, 4]\n", ["candidate_bits", "ascending"]),
            ("average_bits: 6\n", ["average_bits", "needs 'mixed_precision'"]),
            ("module_bits: {blocks.12.mlp: 4}\n", ["module_bits", "'blocks.12.mlp'"]),
            ("mixed_precision: nuclear\nmodule_bits: {head: 8}\n", ["module_bits", "exclude each other"]),
        ]
        for (i, (lines, needles)) in cases.enumerated() {
            let r = try recipe("bad\(i)", lines)
            let out = dir + "/bad\(i).safetensors"
            let run = try CLIRunner.run(arguments(r, out: out))
            XCTAssertEqual(run.status, 1, lines)
            let text = run.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertEqual(text.split(separator: "\n").count, 1, text)
            for n in needles + [r] { XCTAssertTrue(text.contains(n), "\(lines): '\(n)' not in: \(text)") }
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
    }
}
