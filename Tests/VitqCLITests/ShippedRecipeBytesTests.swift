import Foundation
import VitqFormats
import VitqTestSupport
import XCTest

/// The sha256 of the files the shipped recipes write on the fixtures, recorded before the
/// issue-17 restructuring (commit 56af037) and held since: a refactor that changes a quantized
/// file's bytes fails here. `minmax-w8a8`'s were recorded again when issue 19 moved method
/// `minmax` onto fixed shards and sensitivity-ranked partial quantization (on the Haswell/Zen
/// column only; a core without a recorded hash checks that two workers write the in-process
/// bytes instead, and prints the hash to record).
///
/// The bytes depend on the OpenBLAS core the process runs on: stage 1's float products come from
/// OpenBLAS sgemm, whose kernels (AVX2 or AVX-512) round differently, so the same run gives other
/// stage-1 bits and hence other decisions on another core type (Docs/DEPLOY.md: a mixed cluster
/// sets one `OPENBLAS_CORETYPE`). The table has one column per core type the hashes were
/// recorded on: Haswell's kernels (also OpenBLAS's Zen; the hashes, made on an AVX2 Zen 3,
/// are that column) and Cooperlake's (AVX-512, as OpenBLAS 0.3.21 names a Zen 5).
final class ShippedRecipeBytesTests: XCTestCase {
    /// A fixture run: model, recipe, calibration images.
    struct Run: Hashable {
        var model: String, recipe: String, calib: Int
        var arguments: [String] {
            ["quantize", model, "--data", Fixtures.even500Images, "--calib-offset", "0", "--calib", String(calib), "--recipe", recipe]
        }
    }

    static let vitTiny = Fixtures.vitTiny, swinMicro = Fixtures.swinMicro
    static let fast8 = Run(model: vitTiny, recipe: "ptq4vit-fast", calib: 8)
    static let vitqW8A8 = Run(model: vitTiny, recipe: "vitq-w8a8", calib: 32)
    static let ptq4vitW8A8 = Run(model: vitTiny, recipe: "ptq4vit-w8a8", calib: 32)
    static let minmax = Run(model: vitTiny, recipe: "minmax-w8a8", calib: 32)
    static let swinPtq4vit = Run(model: swinMicro, recipe: "ptq4vit-w8a8", calib: 32)
    static let swinMinmax = Run(model: swinMicro, recipe: "minmax-w8a8", calib: 8)

    /// Expected sha256 by OpenBLAS core name, then by run.
    static let expected: [String: [Run: String]] = {
        let haswell: [Run: String] = [
            fast8: "06697af19a74f05cac99a0bd3c77c8955f72fdd19b77879da8d905d84b90b36f",
            vitqW8A8: "0e2061aca20d2584a4be33fe984a6505248412dbe711719ab365aeba56aaa5a5",
            ptq4vitW8A8: "b5fe92d141a8a6dca8fe73f0546f90e102399986c739985a5d0944255ec10971",
            minmax: "84ce7dd74b69521c8c7d6586b0e07835b5b0f015615426094f5ae141c1e5dd2b",
            swinPtq4vit: "e91b954cee35a2da9a191fb5cd140b04585ac71e4fb50f1f8ab718d1721861b6",
            swinMinmax: "78417a1d7f1d09f0176de92af05096feb8030895b81f87542570b0fe25fe9f89",
        ]
        let cooperlake: [Run: String] = [
            fast8: "0013a34af2f995ea9168b01c136bd2fcfee4b5fc4a584663f759d73d357992fb",
            vitqW8A8: "6176853157c5a0333becf5d798d40327c9630effae1ed495b433df67c24894e4",
            ptq4vitW8A8: "d94704011b2e91655f181fe7f38795596ea8300053b71eb9ab478bd25bb578df",
            swinPtq4vit: "96cb77bf8e0def7882805964bc768e1c110283650094f97df8e214a02bcc021b",
            minmax: "50675161971964f6271a35dd887c08793de33d31c0fa2673411779e16a53ab3b",
            swinMinmax: "bedda4bfda81d20e5a32c4a4fae46d3700dd3e7f57d006bc95233a5332033cd7",
        ]
        return ["Haswell": haswell, "Zen": haswell, "Cooperlake": cooperlake]
    }()

    /// The OpenBLAS core `vitq` runs on here (`vitq version`'s "core NAME").
    static let core: String = {
        guard let r = try? CLIRunner.run(["version"]),
              let line = r.stdout.split(separator: "\n").first(where: { $0.hasPrefix("openblas") }),
              let range = line.range(of: ", core ", options: .backwards) else { return "unknown" }
        return String(line[range.upperBound...]).trimmingCharacters(in: .whitespaces)
    }()

    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// Quantizes `run` (with `extra` flags) and checks the file's sha256 against the table; for a
    /// run the table has no hash for on this core, that two workers write the same bytes.
    func check(_ run: Run, _ label: String, extra: [String] = [], environment: [String: String] = [:]) throws {
        try Fixtures.require()
        let out = dir + "/\(label).safetensors"
        let r = try CLIRunner.run(run.arguments + ["--out", out] + extra, environment: environment)
        XCTAssertEqual(r.status, 0, r.stderr)
        guard Self.expected[Self.core] == nil || Self.expected[Self.core]?[run] != nil else {
            let two = dir + "/\(label)-two-workers.safetensors"
            XCTAssertEqual(try CLIRunner.run(run.arguments + ["--out", two, "--workers", "2"]).status, 0)
            let sha = try SHA256.hex(ofFile: out)
            XCTAssertEqual(try SHA256.hex(ofFile: two), sha, "\(run.recipe): 2 workers write the in-process bytes")
            print("no hash recorded for \(run.recipe) on \(run.calib) images, core \(Self.core): \(sha) (in process = 2 workers)")
            return
        }
        try Self.assertExpected(out, run, label)
    }

    /// Checks the sha256 of `file`, written by `run`, against the table.
    static func assertExpected(_ file: String, _ run: Run, _ label: String, line: UInt = #line) throws {
        let table = try XCTUnwrap(expected[core],
                                  "no hashes recorded for OpenBLAS core '\(core)': record them with the pre-refactor binary (cores: \(expected.keys.sorted()))")
        XCTAssertEqual(try SHA256.hex(ofFile: file), table[run],
                       "\(run.recipe) on \(run.calib) images of \((run.model as NSString).lastPathComponent), \(label), core \(core)", line: line)
    }

    func testMinMaxW8A8OnViTAndSwin() throws {
        try check(Self.minmax, "vit")
        try check(Self.swinMinmax, "swin")
    }

    func testPtq4vitFastOnEightImagesWithTwoWorkers() throws {
        // In process: SearchCLITests.testFastPTQ4ViTQuantizesDeterministicallyAndSpillsToTheSameBytes.
        try check(Self.fast8, "two-workers", extra: ["--workers", "2"])
    }

    /// The integer kernels of every level compute the same integers: the search's scores, and so
    /// the file, do not depend on the level (the other runs here use the best this CPU has, AVX-512
    /// VNNI on a Zen 5; these stop at AVX2 and at AVX-VNNI, which is AVX2 where the CPU lacks it).
    func testPtq4vitFastCappedAtAVX2WritesTheSameBytes() throws {
        try check(Self.fast8, "avx2", environment: ["VITQ_ISA": "avx2"])
        try check(Self.fast8, "avxvnni", environment: ["VITQ_ISA": "avxvnni"])
    }

    func testVitqW8A8InProcessAndWithTwoWorkers() throws {
        try check(Self.vitqW8A8, "in-process")
        try check(Self.vitqW8A8, "two-workers", extra: ["--workers", "2"])
    }

    func testPtq4vitW8A8WithTwoWorkers() throws {
        // Two workers only, to keep CI short: the worker count never changes the bytes
        // (DistributedCLITests), and the in-process run was checked against the same hash by hand.
        try check(Self.ptq4vitW8A8, "two-workers", extra: ["--workers", "2"])
    }
}
