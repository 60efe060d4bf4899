import VitqTestSupport
import XCTest

/// `--deadline-floor SECONDS` is a visible, checked flag of `vitq coordinator` and `vitq quantize`.
final class DeadlineFloorFlagTests: XCTestCase {
    func testTheDeadlineFloorIsListedInHelpAndChecked() throws {
        for command in ["coordinator", "quantize"] {
            let help = try CLIRunner.run([command, "--help"])
            XCTAssertTrue(help.stdout.contains("--deadline-floor"), "\(command) --help: \(help.stdout)")
            let bad = try CLIRunner.run([command, "m.safetensors", "--data", "d.npy", "--recipe", "r", "--out", "q.safetensors",
                                         "--bind", "ipc:///tmp/x.ipc", "--deadline-floor", "0"].filter { command == "coordinator" || $0 != "--bind" && $0 != "ipc:///tmp/x.ipc" })
            XCTAssertNotEqual(bad.status, 0)
            XCTAssertTrue(bad.stderr.contains("--deadline-floor must be in 0.1...86400 seconds"), "\(command): \(bad.stderr)")
        }
    }
}
