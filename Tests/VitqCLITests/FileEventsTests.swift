import Foundation
import VitqTestSupport
import XCTest

/// `FileEvents.wait`, which the process tests wait on: it returns when a file in the folder
/// changes so that the condition holds, and throws (naming what it waited for) when it never does.
final class FileEventsTests: XCTestCase {
    func testWakesOnAWriteAndFailsOnTimeout() throws {
        let dir = makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/status.json"
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.2) { _ = FileManager.default.createFile(atPath: path, contents: Data("done".utf8)) }
        try FileEvents.wait(for: "status written", in: dir, seconds: 30) { FileManager.default.contents(atPath: path) == Data("done".utf8) }
        XCTAssertThrowsError(try FileEvents.wait(for: "never written", in: dir, seconds: 0.3) { false }) { error in
            XCTAssertTrue("\(error)".contains("never written: not within 0.3 s"), "\(error)")
        }
    }
}
