import Foundation
import XCTest

/// Runs the built `vitq` executable and captures its output.
public enum CLIRunner {
    public struct Result {
        public let status: Int32
        public let stdout: String
        public let stderr: String

        /// The JSON object on stdout of a run that must have succeeded (test failures otherwise).
        public func jsonObject(file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
            XCTAssertEqual(status, 0, stderr, file: file, line: line)
            return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any], stdout + stderr, file: file, line: line)
        }
    }

    /// The `vitq` built with the running tests: the one in the test bundle's build folder (the
    /// folder holding `vitqPackageTests.xctest`; VitqCLITests depends on the `vitq` target, so it
    /// is rebuilt with the tests). Never a binary from another build: without it the tests stop.
    public static let binary: String = {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        // macOS runs …/vitqPackageTests.xctest/Contents/MacOS/vitqPackageTests: leave the bundle.
        while dir.pathComponents.contains(where: { $0.hasSuffix(".xctest") }) { dir = dir.deletingLastPathComponent() }
        let candidate = dir.appendingPathComponent("vitq").path
        guard FileManager.default.isExecutableFile(atPath: candidate) else {
            fatalError("\(candidate) is missing: build the tests with `swift build --build-tests` (it builds vitq beside them)")
        }
        return candidate
    }()

    /// Runs `vitq args…` to completion.
    public static func run(_ args: [String], environment: [String: String] = [:]) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        // Drain both pipes concurrently so a large output cannot block the child.
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { errBox.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        let errData = errBox.data
        p.waitUntilExit()
        return Result(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
    }
}

extension CLIRunner {
    /// Starts `vitq args…` in the background with stderr written to `log`, and stdout to `stdout`
    /// (to `log` too when nil).
    public static func start(_ args: [String], log: String, stdout: String? = nil) throws -> Process {
        func file(_ path: String) throws -> FileHandle {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
            return try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        let err = try file(log)
        p.standardError = err
        p.standardOutput = try stdout.map(file) ?? err
        try p.run()
        return p
    }

    /// Waits for `p` to exit, at most `seconds`; kills it (and fails) after that.
    @discardableResult
    public static func wait(_ p: Process, seconds: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit(); return nil }
        return p.terminationStatus
    }
}
