import Foundation
import VitqFormats
import VitqTestSupport
import XCTest

/// Sizes in a header that overflow 64-bit arithmetic are one-line errors, never a trap.
final class HostileSizeTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func safetensors(_ header: String, payload: Int = 8) -> String {
        var d = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { d.append(contentsOf: $0) }
        d.append(Data(header.utf8))
        d.append(Data(repeating: 0, count: payload))
        let p = dir + "/\(UUID().uuidString).safetensors"
        FileManager.default.createFile(atPath: p, contents: d)
        return p
    }

    func npy(shape: String, payload: Int = 16) -> String {
        var header = "{'descr': '|u1', 'fortran_order': False, 'shape': \(shape), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var d = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        withUnsafeBytes(of: UInt16(header.utf8.count).littleEndian) { d.append(contentsOf: $0) }
        d.append(Data(header.utf8))
        d.append(Data(repeating: 0, count: payload))
        let p = dir + "/\(UUID().uuidString).npy"
        FileManager.default.createFile(atPath: p, contents: d)
        return p
    }

    func assertOneLine(_ e: Error, _ needles: [String], file: StaticString = #filePath, line: UInt = #line) {
        let t = "\(e)"
        XCTAssertTrue(e is FormatError, "a FormatError: \(t)", file: file, line: line)
        XCTAssertFalse(t.contains("\n"), "one line: \(t)", file: file, line: line)
        for n in needles { XCTAssertTrue(t.contains(n), "'\(t)' should mention '\(n)'", file: file, line: line) }
    }

    /// [2^61] F64 is 2^64 bytes: the byte count overflowed and trapped (SIGILL).
    func testSafetensorsShapeWhoseByteCountOverflowsIsAnError() {
        let p = safetensors(#"{"x":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,8]}}"#)
        XCTAssertThrowsError(try TensorFile(path: p)) { assertOneLine($0, [p, "'x'", "overflows"]) }
        // Huge dimensions beside a zero one hold no bytes, but any product over them would trap.
        let q = safetensors(#"{"y":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904,0],"data_offsets":[0,0]}}"#)
        XCTAssertThrowsError(try TensorFile(path: q)) { assertOneLine($0, [q, "'y'", "overflows"]) }
    }

    /// JSON nested 100k deep in the header (and in a metadata string) is an error, not a stack overflow.
    func testDeeplyNestedHeaderIsAnError() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        let p = safetensors("{\"x\":" + deep + "}", payload: 0)
        XCTAssertThrowsError(try TensorFile(path: p)) { assertOneLine($0, [p]) }
    }

    func testNpyShapeWhoseProductOverflowsIsAnError() {
        let p = npy(shape: "(4294967296, 4294967296, 3)")
        XCTAssertThrowsError(try NpyArray(path: p)) { assertOneLine($0, [p, "overflows"]) }
        let q = npy(shape: "(9223372036854775807, 2)")
        XCTAssertThrowsError(try NpyArray(path: q)) { assertOneLine($0, [q, "overflows"]) }
    }

    func testOverflowSafeProductAndSum() {
        XCTAssertEqual(CheckedSize.product([]), 1)
        XCTAssertEqual(CheckedSize.product([3, 0, 5]), 0)
        XCTAssertEqual(CheckedSize.product([1 << 31, 1 << 31]), 1 << 62)
        XCTAssertNil(CheckedSize.product([1 << 32, 1 << 32]))
        XCTAssertNil(CheckedSize.product([1 << 62, 1 << 62, 0]))
        XCTAssertNil(CheckedSize.product([-1, 2]))
        XCTAssertEqual(CheckedSize.sum([1, 2]), 3)
        XCTAssertNil(CheckedSize.sum([Int.max, 1]))
    }
}
