import Foundation
import VitqFormats
import VitqTensor
import VitqTestSupport
import XCTest

/// Crafted model files and recipes through the built `vitq`: each gives one error line naming
/// the file and tensor or key and exit 1, never a signal (SIGILL, SIGSEGV) or a hang.
final class HostileFileCLITests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// Four 16×16 images (the tiny model's input size) and their labels.
    func data() throws -> [String] {
        var rng = SeededRandom(seed: 8)
        let s = TinyViTFile.img
        try NpyWriter.write(uint8s: (0..<(4 * s * s * 3)).map { _ in UInt8(truncatingIfNeeded: Int(rng.normal() * 60 + 128)) },
                            shape: [4, s, s, 3], to: dir + "/x.npy")
        try NpyWriter.write(int64s: [0, 1, 2, 0], shape: [4], to: dir + "/y.npy")
        return ["--data", dir + "/x.npy", "--labels", dir + "/y.npy"]
    }

    func assertOneLineFailure(_ args: [String], mentions needles: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try CLIRunner.run(args)
        XCTAssertEqual(r.status, 1, "exit 1, no signal: \(r.stderr)", file: file, line: line)
        let text = r.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertFalse(text.contains("\n"), "one line: \(text)", file: file, line: line)
        for n in needles { XCTAssertTrue(text.contains(n), "'\(text)' should mention '\(n)'", file: file, line: line) }
    }

    func testCraftedFloatModelsAreOneLineErrors() throws {
        let d = try data()
        var nan = [Float](repeating: 0.1, count: 16 * 8)
        nan[5] = .nan
        let cases: [(String, [String: (shape: [Int], values: [Float])], [String])] = [
            ("nan", ["blocks.0.mlp.fc1.weight": ([16, 8], nan)], ["blocks.0.mlp.fc1.weight", "not finite"]),
            ("pos0", ["pos_embed": ([1, 0, 8], [])], ["pos_embed"]),
        ]
        for (name, replace, needles) in cases {
            let p = try TinyViTFile.write(to: dir + "/\(name).safetensors", replace: replace)
            try assertOneLineFailure(["eval", p] + d, mentions: [p] + needles)
            try assertOneLineFailure(["quantize", p, "--calib", "4", "--out", dir + "/q-\(name).safetensors"] + d, mentions: [p] + needles)
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/q-\(name).safetensors"), "no output")
        }
        // A safetensors shape of [2^61] in F64: the byte count overflows.
        let header = #"{"x":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}}"#
        var bytes = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(Data(header.utf8)); bytes.append(Data(count: 8))
        let p = dir + "/huge.safetensors"
        FileManager.default.createFile(atPath: p, contents: bytes)
        try assertOneLineFailure(["eval", p] + d, mentions: [p, "'x'", "overflows"])
    }

    func testCraftedQuantizedFilesAndRecipesAreOneLineErrors() throws {
        let d = try data()
        let fp = try TinyViTFile.write(to: dir + "/fp.safetensors")
        let q = dir + "/q.safetensors"
        let ok = try CLIRunner.run(["quantize", fp, "--calib", "4", "--out", q] + d)
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertEqual(try CLIRunner.run(["eval", q] + d).status, 0)
        let f = try TensorFile(path: q)
        for (key, value, needle) in [("\"depth\":1", "\"depth\":1099511627776", "depth"), ("\"imgSize\":16", "\"imgSize\":4611686018427387904", "imgSize"),
                                     ("\"inChans\":3", "\"inChans\":4611686018427387904", "inChans")] {
            var w = SafeTensorsWriter()
            w.metadata = f.metadata
            let model = try XCTUnwrap(w.metadata["model"])
            XCTAssertTrue(model.contains(key), model)
            w.metadata["model"] = model.replacingOccurrences(of: key, with: value)
            for n in f.names { w.add(n, dtype: try f.info(n).dtype, shape: try f.info(n).shape, bytes: Data(try f.rawBytes(n))) }
            let bad = dir + "/bad-\(needle).safetensors"
            try w.write(to: bad)
            try assertOneLineFailure(["eval", bad] + d, mentions: [bad, "metadata 'model'", needle])
        }
        // Recipes: billion laughs, 30k-deep nesting, a non-string key (which trapped inside Yams).
        var laughs = "a0: &a0 [lol]\n"
        for i in 1...9 { laughs += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n" }
        for (name, text, needle) in [("laughs", laughs, "aliases"), ("deep", "name: " + String(repeating: "[", count: 30_000), "nesting"),
                                     ("key", "[a]: b\n", "keys")] {
            let r = dir + "/\(name).yaml"
            try text.write(toFile: r, atomically: true, encoding: .utf8)
            try assertOneLineFailure(["quantize", fp, "--recipe", r, "--calib", "4", "--out", dir + "/q-\(name).safetensors"] + d, mentions: [r, needle])
        }
    }
}
