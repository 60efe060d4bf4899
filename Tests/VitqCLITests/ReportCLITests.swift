import Foundation
import VitqFormats
import VitqTestSupport
import XCTest

/// The marks of a `vitq report` page with CSS class `cls` (`<tr class="op">`, `<circle class="frontier">`, `<svg class="hist">`…),
/// each as its `data-*` attributes (without the prefix).
func reportMarks(_ html: String, _ cls: String) -> [[String: String]] {
    let element = try! NSRegularExpression(pattern: "<(tr|circle|rect|svg)\\s+class=\"\(cls)( [a-z]+)?\"([^>]*)>")
    let attribute = try! NSRegularExpression(pattern: "data-([a-z0-9-]+)=\"([^\"]*)\"")
    let ns = html as NSString
    return element.matches(in: html, range: NSRange(location: 0, length: ns.length)).map { m in
        let attrs = ns.substring(with: m.range(at: 3))
        var d: [String: String] = [:]
        for a in attribute.matches(in: attrs, range: NSRange(location: 0, length: (attrs as NSString).length)) {
            d[(attrs as NSString).substring(with: a.range(at: 1))] = (attrs as NSString).substring(with: a.range(at: 2))
        }
        return d
    }
}

/// `vitq report` on real runs: every chart holds the numbers of the file and log it was made
/// from (read back from the marks' data attributes), the page is self-contained, and bad
/// inputs get one line naming the file and key.
final class ReportCLITests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// minmax-w8a8 on the DeiT micro (4 calibration images), its --json log, and its report with --data.
    func uniformRun() throws -> (file: String, log: String, html: String) {
        let q = dir + "/q.safetensors", log = dir + "/q.json", html = dir + "/q.html"
        let r = try CLIRunner.run(["quantize", Fixtures.deitMicro, "--data", Fixtures.even500Images, "--calib-offset", "3", "--calib", "4",
                                   "--recipe", "minmax-w8a8", "--out", q, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        try r.stdout.write(toFile: log, atomically: true, encoding: .utf8)
        let rep = try CLIRunner.run(["report", q, "--log", log, "--data", Fixtures.even500Images, "--out", html, "--json"])
        XCTAssertEqual(rep.status, 0, rep.stderr)
        let written = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(rep.stdout.utf8)) as? [String: Any], rep.stdout)
        XCTAssertEqual(written["bytes"] as? Int, (try FileManager.default.attributesOfItem(atPath: html)[.size] as? Int))
        XCTAssertEqual(written["mixed_precision"] as? Bool, false)
        return (q, log, try String(contentsOfFile: html, encoding: .utf8))
    }

    func testUniformReportHoldsTheFilesWidthsClippingAndErrors() throws {
        try Fixtures.require()
        let (q, log, html) = try uniformRun()
        XCTAssertFalse(html.contains("<script"), "no script")
        XCTAssertFalse(html.contains("http://") || html.contains("https://"), "no network reference")
        let file = try TensorFile(path: q)
        let ops = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(file.metadata["ops"]!.utf8)) as? [String: [String: Any]])
        let logObject = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: log))) as? [String: Any])
        let rows = reportMarks(html, "op")
        let linear = rows.filter { !$0["op"]!.hasSuffix(".matmul1") && !$0["op"]!.hasSuffix(".matmul2") }
        XCTAssertEqual(linear.count, ops.filter { $0.value["kind"] as? String == "linear" }.count + 1, "every linear op, one (keep_float: 1) in float")
        var compared = 0
        for row in linear {
            let name = row["op"]!
            guard let entry = ops[name] else {
                XCTAssertNil(row["weight-bits"], "\(name) is float in the file")
                continue
            }
            let w = entry["weight"] as! [String: Any], x = entry["input"] as! [String: Any]
            XCTAssertEqual(row["weight-bits"].flatMap(Int.init), w["bits"] as? Int, name)
            XCTAssertEqual(row["input-bits"].flatMap(Int.init), x["bits"] as? Int, name)
            // The clipping by hand from the stored scale: symmetric signed 8 bits clip at 127·s.
            let scale = Double(try file.floatTensor(x["scale"] as! String).array[0])
            let clip = try XCTUnwrap(row["clip"].flatMap(Double.init), name)
            XCTAssertEqual(clip, scale * 127, accuracy: 1e-12 * clip, name)
            // minmax sets the scale from the same images' max |x| in the float model. The report measures
            // through the file's weights (rounded to 8 bits): the patch embedding's input is the image
            // itself, so there the range is the clip; later inputs move by the weights' rounding (< 1 %).
            let range = try XCTUnwrap(row["range"].flatMap(Double.init), name)
            XCTAssertEqual(clip, range, accuracy: (name == "patch_embed.proj" ? 1e-6 : 1e-2) * range, name)
            compared += 1
        }
        XCTAssertEqual(compared, linear.count - 1, "every quantized linear op compared")
        // The histograms count every input element of the calibration images once.
        let hist = reportMarks(html, "hist")
        let qkv = try XCTUnwrap(hist.first { $0["op"] == "blocks.0.attn.qkv" })
        let counts = qkv["counts"]!.split(separator: ",").compactMap { Int($0) }
        let embed = try file.floatTensor("blocks.0.attn.qkv.weight_scale").count / 3   // qkv rows are 3 × the embedding width
        XCTAssertEqual(counts.reduce(0, +), 4 * 198 * embed, "4 images × 198 tokens (196 patches, class and distillation) × the embedding width")
        // The relative errors are the log's (none for minmax: it does not search).
        let logged = logObject["op_relative_error"] as? [String: Double] ?? [:]
        for row in rows { XCTAssertEqual(row["relative-error"].flatMap(Double.init), logged[row["op"]!], row["op"]!) }
    }

    func testBadInputsGiveOneLineAndNoOutput() throws {
        try Fixtures.require()
        let (q, log, _) = try uniformRun()
        let other = dir + "/other.json", notJSON = dir + "/bad.json", out = dir + "/never.html"
        let text = try String(contentsOfFile: log, encoding: .utf8)
        try text.replacingOccurrences(of: "\"sha256\":\"", with: "\"sha256\":\"0").write(toFile: other, atomically: true, encoding: .utf8)
        try "{\"sha256\": ".write(toFile: notJSON, atomically: true, encoding: .utf8)
        let cases: [([String], [String])] = [
            (["--log", other], [other, "sha256", "another file"]),
            (["--log", notJSON], [notJSON, "not a JSON object"]),
            (["--log", log, "--measured", log], [log, "mixed_precision"]),
            (["--log", dir + "/missing.json"], ["missing.json"]),
        ]
        for (flags, words) in cases {
            let r = try CLIRunner.run(["report", q] + flags + ["--out", out])
            XCTAssertEqual(r.status, 1, "\(flags)")
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            for w in words { XCTAssertTrue(r.stderr.contains(w), "\(flags): \(r.stderr)") }
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no partial output")
        }
        let overwrite = try CLIRunner.run(["report", q, "--log", log, "--out", log])
        XCTAssertEqual(overwrite.status, 1)
        XCTAssertTrue(overwrite.stderr.contains("refusing to overwrite"), overwrite.stderr)
        let float = try CLIRunner.run(["report", Fixtures.deitMicro, "--out", out])
        XCTAssertEqual(float.status, 1)
        XCTAssertTrue(float.stderr.contains("not a vitq quantized file"), float.stderr)
    }
}
