import Foundation
import XCTest

/// Makes test images with Python's Pillow and numpy at test time (nothing binary is committed):
/// the script runs in `dir`, and its references are PIL's own decodings, saved as .npy files.
public enum PythonImages {
    /// Runs `python3 -c script` in `dir`; throws (after recording a failure) if it fails.
    @discardableResult
    public static func run(_ script: String, in dir: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script]
        p.currentDirectoryURL = URL(fileURLWithPath: dir)
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { errBox.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        group.wait()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            let msg = "python3 failed (needs Pillow and numpy: pip install pillow numpy): " + String(decoding: errBox.data, as: UTF8.self)
            XCTFail(msg, file: file, line: line)
            throw PythonFailed(message: msg)
        }
        return stdout
    }

    /// Thrown (after a test failure is recorded) when the script fails.
    public struct PythonFailed: Error { public let message: String }
}
