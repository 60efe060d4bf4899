import Foundation
import VitqFormats
import VitqTestSupport
import XCTest

/// `MappedFile` (under every model and quantized-file reader) maps regular files only: a FIFO
/// given as a model path used to block in open(2) forever, waiting for a writer.
final class MappedFileTests: XCTestCase {
    func testAFIFOIsRefusedWithoutBlocking() throws {
        let dir = makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/model.safetensors"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        let started = Date()
        XCTAssertThrowsError(try TensorFile(path: fifo)) { e in
            XCTAssertEqual("\(e)".components(separatedBy: "\n").count, 1)
            XCTAssertTrue("\(e)".contains(fifo) && "\(e)".contains("not a regular file"), "\(e)")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
        XCTAssertThrowsError(try TensorFile(path: "/dev/null")) { XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)") }
    }
}
