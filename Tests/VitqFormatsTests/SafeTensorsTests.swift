import Foundation
import VitqFormats
import VitqTensor
import VitqTestSupport
import XCTest

final class SafeTensorsTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// A file with a hand-written header and payload.
    func write(header: String, payload: [UInt8], name: String = "m.safetensors") -> String {
        var d = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { d.append(contentsOf: $0) }
        d.append(Data(header.utf8))
        d.append(Data(payload))
        let p = dir + "/" + name
        FileManager.default.createFile(atPath: p, contents: d)
        return p
    }

    func testRoundTripKeepsValuesAndMetadata() throws {
        var w = SafeTensorsWriter()
        w.add("b", shape: [2, 3], floats: [1, 2, 3, 4, 5, -6.5])
        w.add("a", dtype: .i64, shape: [2], bytes: Data([7, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]))
        w.metadata = ["k": "v \"quoted\""]
        let p = dir + "/rt.safetensors"
        try w.write(to: p)
        let f = try TensorFile(path: p)
        XCTAssertEqual(f.names, ["a", "b"])
        XCTAssertEqual(f.metadata, ["k": "v \"quoted\""])
        XCTAssertEqual(try f.floatTensor("b").array, [1, 2, 3, 4, 5, -6.5])
        XCTAssertEqual(try f.floatTensor("b").shape, [2, 3])
        XCTAssertEqual(try f.integers("a"), [7, -1])
        // Deterministic bytes; no temp file left behind.
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: p)), w.serialized())
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["rt.safetensors"])
    }

    func testHalfAndBFloat16AreConvertedToFloat() throws {
        // F16 1.0, -2.0 and BF16 1.0, -5.0 (hand-encoded little-endian).
        let header = #"{"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]}}"#
        let p = write(header: header, payload: [0x00, 0x3C, 0x00, 0xC0, 0x80, 0x3F, 0xA0, 0xC0])
        let f = try TensorFile(path: p)
        XCTAssertEqual(try f.floatTensor("h").array, [1, -2])
        XCTAssertEqual(try f.floatTensor("b").array, [1, -5])
    }

    func testReadsTheRealViTTinyFixture() throws {
        try Fixtures.require()
        let f = try TensorFile(path: Fixtures.vitTiny)
        XCTAssertEqual(f.tensors.count, 152)
        XCTAssertEqual(f.tensors["pos_embed"]?.shape, [1, 197, 192])
        XCTAssertEqual(f.metadata["architecture"], "vit_tiny_patch16_224")
    }

    func assertError(_ path: String, contains needles: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try TensorFile(path: path), file: file, line: line) { e in
            let text = "\(e)"
            XCTAssertFalse(text.contains("\n"), "one line: \(text)", file: file, line: line)
            for n in needles { XCTAssertTrue(text.contains(n), "'\(text)' should mention '\(n)'", file: file, line: line) }
        }
    }

    func testTruncatedFileIsRejected() throws {
        let good = write(header: #"{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, payload: Array(repeating: 0, count: 16))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        for cut in [0, 5, 20] {
            let p = dir + "/cut\(cut).safetensors"
            FileManager.default.createFile(atPath: p, contents: bytes.prefix(cut))
            assertError(p, contains: [p, "truncated"])
        }
        // Cut inside the data: the tensor's range now runs past the end.
        let p = dir + "/cutdata.safetensors"
        FileManager.default.createFile(atPath: p, contents: bytes.prefix(bytes.count - 4))
        assertError(p, contains: [p, "'x'", "beyond"])
    }

    func testRangesBeyondTheFileAreRejected() {
        let p = write(header: #"{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,1600]}}"#, payload: Array(repeating: 0, count: 16))
        assertError(p, contains: [p, "'x'", "beyond"])
    }

    func testUnknownDtypeIsRejected() {
        let p = write(header: #"{"x":{"dtype":"F8_E4M3Q","shape":[4],"data_offsets":[0,4]}}"#, payload: Array(repeating: 0, count: 4))
        assertError(p, contains: [p, "'x'", "F8_E4M3Q"])
    }

    func testShapeByteLengthMismatchIsRejected() {
        let p = write(header: #"{"x":{"dtype":"F32","shape":[5],"data_offsets":[0,16]}}"#, payload: Array(repeating: 0, count: 16))
        assertError(p, contains: [p, "'x'", "[5]"])
    }

    func testOverlappingRangesAreRejected() {
        let h = #"{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"y":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#
        let p = write(header: h, payload: Array(repeating: 0, count: 16))
        assertError(p, contains: [p, "overlaps"])
    }

    func testBadJSONHeaderIsRejected() {
        let p = write(header: "{not json", payload: [])
        assertError(p, contains: [p, "JSON"])
    }

    func testMissingFileNamesThePath() {
        assertError(dir + "/nope.safetensors", contains: ["nope.safetensors"])
    }
}

final class NpyTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testRoundTripsAllThreeDtypes() throws {
        try NpyWriter.write(floats: [1.5, -2, 3], shape: [3], to: dir + "/f.npy")
        try NpyWriter.write(int64s: [1, -2, 3, 4], shape: [2, 2], to: dir + "/i.npy")
        try NpyWriter.write(uint8s: [0, 255, 7, 8, 9, 10], shape: [1, 1, 2, 3], to: dir + "/u.npy")
        let f = try NpyArray(path: dir + "/f.npy"), i = try NpyArray(path: dir + "/i.npy"), u = try NpyArray(path: dir + "/u.npy")
        XCTAssertEqual(try f.floats(), [1.5, -2, 3])
        XCTAssertEqual(try i.int64s(), [1, -2, 3, 4])
        XCTAssertEqual(i.shape, [2, 2])
        XCTAssertEqual(u.shape, [1, 1, 2, 3])
        XCTAssertEqual(Array(u.bytes), [0, 255, 7, 8, 9, 10])
        // The header is 64-byte aligned, as numpy writes it.
        let raw = try Data(contentsOf: URL(fileURLWithPath: dir + "/f.npy"))
        XCTAssertEqual((raw.count - 12) % 64, 0)
    }

    func testReadsTheFixtureLabels() throws {
        try Fixtures.require()
        let l = try NpyArray(path: Fixtures.even500Labels, expect: .int64)
        XCTAssertEqual(l.shape, [500])
        XCTAssertEqual(Array(try l.int64s().prefix(3)), [0, 2, 4])
    }

    func testWrongDtypeIsOneClearError() throws {
        try NpyWriter.write(floats: [1, 2], shape: [2], to: dir + "/f.npy")
        XCTAssertThrowsError(try NpyArray(path: dir + "/f.npy", expect: .uint8)) { e in
            let t = "\(e)"
            XCTAssertTrue(t.contains(dir + "/f.npy") && t.contains("<f4"), t)
        }
    }

    func testTruncatedDataIsRejected() throws {
        try NpyWriter.write(floats: [1, 2, 3, 4], shape: [4], to: dir + "/f.npy")
        let d = try Data(contentsOf: URL(fileURLWithPath: dir + "/f.npy"))
        FileManager.default.createFile(atPath: dir + "/t.npy", contents: d.prefix(d.count - 3))
        XCTAssertThrowsError(try NpyArray(path: dir + "/t.npy")) { XCTAssertTrue("\($0)".contains("truncated")) }
    }
}
