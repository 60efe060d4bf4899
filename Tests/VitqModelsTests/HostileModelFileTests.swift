import Foundation
import VitqFormats
import VitqModels
import VitqTensor
import VitqTestSupport
import XCTest

/// Crafted float model files (from ``TinyViTFile``): sizes that would trap or allocate without
/// bound, and non-finite tensors, are one-line errors naming the tensor or key.
final class HostileModelFileTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func assertLoadFails(_ path: String, _ needles: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try VisionTransformer(path: path), file: file, line: line) { e in
            let t = "\(e)"
            XCTAssertTrue(e is ModelError || e is FormatError, "a project error: \(t)", file: file, line: line)
            XCTAssertFalse(t.contains("\n"), "one line: \(t)", file: file, line: line)
            for n in needles { XCTAssertTrue(t.contains(n), "'\(t)' should mention '\(n)'", file: file, line: line) }
        }
    }

    func path(_ name: String) -> String { dir + "/" + name + ".safetensors" }

    func testTheTinyModelLoads() throws {
        let m = try VisionTransformer(path: try TinyViTFile.write(to: path("ok")))
        XCTAssertEqual(m.config.imgSize, TinyViTFile.img)
        XCTAssertEqual(m.config.numHeads, TinyViTFile.heads)
    }

    /// pos_embed [1, 0, E] left −1 patch tokens: the square root of −1 trapped converting NaN to Int.
    func testEmptyPositionEmbeddingIsAnError() throws {
        let p = try TinyViTFile.write(to: path("pos0"), replace: ["pos_embed": ([1, 0, TinyViTFile.embed], [])])
        assertLoadFails(p, [p, "pos_embed", "[1, 0, 8]"])
        let q = try TinyViTFile.write(to: path("pos1"), replace: ["pos_embed": ([1, 1, TinyViTFile.embed], [Float](repeating: 0, count: 8))])
        assertLoadFails(q, [q, "pos_embed"])
    }

    /// A zero patch size gave a zero image size and a division by zero.
    func testZeroPatchSizeIsAnError() throws {
        let p = try TinyViTFile.write(to: path("patch0"), replace: ["patch_embed.proj.weight": ([TinyViTFile.embed, 3, 0, 0], [])])
        assertLoadFails(p, [p, "patch_embed.proj.weight"])
    }

    /// An mlp_ratio of 1e300 trapped converting embed_dim × ratio to Int.
    func testHugeMlpRatioIsAnError() throws {
        var w = TinyViTFile.writer()
        w.metadata["timm_config"] = "{\"num_heads\": 2, \"mlp_ratio\": 1e300}"
        let p = path("ratio")
        try w.write(to: p)
        assertLoadFails(p, ["mlp_ratio"])
    }

    /// NaN and Inf weights, norms and position embeddings were loaded (and quantized) silently.
    func testNonFiniteTensorsAreRefusedNamingTheTensor() throws {
        var rng = SeededRandom(seed: 3)
        for (name, shape, bad) in [("blocks.0.mlp.fc1.weight", [16, 8], Float.nan), ("blocks.0.norm1.weight", [8], Float.infinity),
                                   ("pos_embed", [1, 5, 8], -Float.infinity), ("head.bias", [3], Float.nan)] {
            var values = (0..<shape.reduce(1, *)).map { _ in Float(rng.normal()) }
            values[values.count / 2] = bad
            let p = try TinyViTFile.write(to: path(name), replace: [name: (shape, values)])
            assertLoadFails(p, [p, "'\(name)'", "not finite", "\(values.count / 2)"])
        }
    }

    /// A config JSON beside the model that is a FIFO blocked forever, and one linked to
    /// /dev/zero read without end; both are refused in one line naming the JSON.
    func testSidecarThatIsNotARegularFileIsRefused() throws {
        var w = TinyViTFile.writer()
        w.metadata = [:]
        for name in ["fifo", "zero"] {
            let model = path(name)
            try w.write(to: model)
            let json = dir + "/\(name).json"
            if name == "fifo" { XCTAssertEqual(mkfifo(json, 0o600), 0) } else {
                try FileManager.default.createSymbolicLink(atPath: json, withDestinationPath: "/dev/zero")
            }
            assertLoadFails(model, [json, "regular file"])
        }
        let big = path("big")
        try w.write(to: big)
        FileManager.default.createFile(atPath: dir + "/big.json", contents: Data(count: ModelConfigResolver.sidecarMaxBytes + 1))
        assertLoadFails(big, [dir + "/big.json", "at most"])
    }

    /// A Swin config whose stage width, blocks or attention terms overflow is an error before
    /// anything is allocated or loaded.
    func testSwinConfigSizesAreChecked() throws {
        var c = SwinConfig()
        c.embedDim = 1 << 60
        XCTAssertThrowsError(try c.checkSizes(source: "s", fileBytes: 1000, tensorCount: 100)) { XCTAssertTrue("\($0)".contains("1152921504606846976"), "\($0)") }
        c = SwinConfig()
        c.depths = [2, 2, 1 << 40, 2]
        XCTAssertThrowsError(try c.checkSizes(source: "s", fileBytes: 1 << 40, tensorCount: 100)) { XCTAssertTrue("\($0)".contains("depths"), "\($0)") }
        c = SwinConfig()
        c.mlpRatio = 1e300
        XCTAssertThrowsError(try c.checkSizes(source: "s", fileBytes: 1 << 40, tensorCount: 1000)) { XCTAssertTrue("\($0)".contains("mlp_ratio"), "\($0)") }
        c = SwinConfig()
        c.imgSize = 7 << 40; c.patchSize = 1
        XCTAssertThrowsError(try c.checkSizes(source: "s", fileBytes: 1 << 40, tensorCount: 1000)) { XCTAssertTrue("\($0)".contains("img_size"), "\($0)") }
        c = SwinConfig()
        c.numHeads = [1]
        XCTAssertThrowsError(try c.checkSizes(source: "s", fileBytes: 1 << 40, tensorCount: 1000)) { XCTAssertTrue("\($0)".contains("num_heads"), "\($0)") }
        c = SwinConfig()
        c.windowSize = 0
        XCTAssertThrowsError(try c.checkSizes(source: "s", fileBytes: 1 << 40, tensorCount: 1000)) { XCTAssertTrue("\($0)".contains("window_size"), "\($0)") }
        XCTAssertNoThrow(try SwinConfig().checkSizes(source: "s", fileBytes: 200 << 20, tensorCount: 200))
    }
}
