import Foundation
import VitqTestSupport
import VitqZmq
import XCTest

/// `--json` everywhere: every subcommand (every leaf of `vitq --help`) takes it, and the quick
/// ones print exactly one line holding one JSON object. (quantize, coordinator and worker are
/// checked in DistributedCLITests, eval and bench fp32 in CLITests.)
final class JSONFlagCLITests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// Runs `vitq args…`, which must succeed and print one line of one JSON object.
    func oneJSONObject(_ args: [String], file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let r = try CLIRunner.run(args)
        XCTAssertEqual(r.status, 0, r.stderr, file: file, line: line)
        XCTAssertEqual(r.stdout.split(separator: "\n").count, 1, "one line: \(r.stdout)", file: file, line: line)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout, file: file, line: line)
    }

    /// The subcommands listed under SUBCOMMANDS in `vitq <path…> --help`.
    func subcommands(_ path: [String]) throws -> [String] {
        let help = try CLIRunner.run(path + ["--help"]).stdout
        guard let start = help.range(of: "SUBCOMMANDS:\n") else { return [] }
        return help[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false)
            .prefix { !$0.isEmpty }
            .compactMap { line in line.hasPrefix("  ") && !line.hasPrefix("   ") ? line.split(separator: " ").first.map(String.init) : nil }
    }

    func testEverySubcommandTakesJSON() throws {
        var leaves: [[String]] = [], pending = try subcommands([]).map { [$0] }
        XCTAssertTrue(pending.contains(["version"]) && pending.contains(["bench"]), "the subcommands of vitq --help: \(pending)")
        while let path = pending.popLast() {
            let children = try subcommands(path)
            if children.isEmpty { leaves.append(path) } else { pending += children.map { path + [$0] } }
        }
        XCTAssertTrue(leaves.contains(["bench", "fp32"]), "\(leaves)")
        for path in leaves {
            let help = try CLIRunner.run(path + ["--help"]).stdout
            XCTAssertTrue(help.contains("--json"), "vitq \(path.joined(separator: " ")) has no --json:\n\(help)")
        }
    }

    func testVersionJSON() throws {
        let j = try oneJSONObject(["version", "--json"])
        XCTAssertEqual(j["version"] as? String, "0.1.0")
        XCTAssertTrue((j["libzmq"] as? String ?? "").hasPrefix("4."), "\(j)")
        XCTAssertNotNil(j["kernels"] as? String)
        XCTAssertGreaterThan(j["cores"] as? Int ?? 0, 0)
    }

    func testKeygenJSONNamesTheFilesAndTheKey() throws {
        let prefix = dir + "/k"
        let j = try oneJSONObject(["keygen", "--out", prefix, "--json"])
        XCTAssertEqual(j["secret_key_file"] as? String, prefix + ".key")
        XCTAssertEqual(j["public_key_file"] as? String, prefix + ".pub")
        XCTAssertEqual(j["public_key"] as? String, try CurveKeys.readPublic(prefix + ".pub"))
    }

    func testSynthJSONNamesTheFile() throws {
        let out = dir + "/s.safetensors"
        let j = try oneJSONObject(["synth", "--arch", "vit-tiny", "--out", out, "--seed", "3", "--json"])
        XCTAssertEqual(j["out"] as? String, out)
        XCTAssertEqual(j["arch"] as? String, "vit-tiny")
        XCTAssertEqual(j["seed"] as? Int, 3)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out))
    }
}
