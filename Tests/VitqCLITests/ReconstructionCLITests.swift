import Foundation
import VitqFormats
import VitqTestSupport
import XCTest

/// Block reconstruction end to end on the real ViT-Tiny with a short schedule (8 calibration
/// images in shards of 4, 30 steps per unit): every unit reports its loss and the learned ones
/// lower it; the file is plain integers that the integer engine runs bit for bit like the
/// fake-quant reference; the bytes do not depend on the run or on the number of workers.
final class ReconstructionCLITests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func recipe(_ name: String, _ lines: String) throws -> String {
        let path = dir + "/\(name).yaml"
        try """
            name: \(name)
            base: ptq4vit-fast
            weight_bits: 4
            activation_bits: 4
            weight_granularity: per_channel
            shard_images: 4
            search_candidates: 8
            \(lines)
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The short schedule in `mode`.
    func schedule(_ mode: String) -> String { "reconstruction: \(mode)\nreconstruction_iterations: 30\nreconstruction_batch: 2\n" }

    func quantize(_ recipe: String, _ out: String, _ extra: [String] = []) throws -> [String: Any] {
        let r = try CLIRunner.run(["quantize", Fixtures.vitTiny, "--data", Fixtures.even500Images, "--calib-offset", "0", "--calib", "8",
                                   "--recipe", recipe, "--out", out, "--json"] + extra)
        XCTAssertEqual(r.status, 0, r.stderr)
        return try r.jsonObject()
    }

    func testParallelReconstructionLowersTheLossRunsOnTheIntegerEngineAndIsTheSameBytesAnywhere() throws {
        try Fixtures.require()
        let r = try recipe("rp", schedule("parallel") + "qdrop: 0.5\n")
        let out = dir + "/rp.safetensors"
        let json = try quantize(r, out)
        let units = try XCTUnwrap(json["reconstruction"] as? [[String: Any]])
        XCTAssertEqual(units.map { $0["unit"] as! String }, ["patch_embed.proj"] + (0..<12).map { "blocks.\($0)" } + ["head"])
        for u in units {
            let before = u["loss_before"] as! Double, after = u["loss_after"] as! Double, kept = u["kept"] as! Bool
            XCTAssertTrue(before.isFinite && after.isFinite && before > 0, "\(u)")
            XCTAssertEqual(kept, after < before, "a unit keeps what it learned only when that lowers its loss: \(u)")
        }
        XCTAssertGreaterThanOrEqual(units.filter { $0["kept"] as! Bool }.count, 10, "30 steps lower most units' loss: \(units)")
        // Without reconstruction the same search writes other integers.
        let plain = dir + "/plain.safetensors"
        _ = try quantize(try recipe("plain", ""), plain)
        XCTAssertNotEqual(try SHA256.hex(ofFile: plain), try SHA256.hex(ofFile: out))
        // The same bytes again, and with 2 workers (which run the units).
        let again = dir + "/again.safetensors"
        _ = try quantize(r, again)
        XCTAssertEqual(try SHA256.hex(ofFile: again), try SHA256.hex(ofFile: out), "two runs, the same bytes")
        let two = dir + "/two.safetensors"
        let distributed = try quantize(r, two, ["--workers", "2"])
        XCTAssertEqual((distributed["reconstruction"] as? [Any])?.count, units.count)
        XCTAssertEqual(try SHA256.hex(ofFile: two), try SHA256.hex(ofFile: out), "2 workers write the in-process bytes")
        // Nothing new at inference: the integer engine equals the fake-quant reference bit for bit.
        let (integer, fake) = try integerAndFakeQuantLogits(out, in: dir)
        XCTAssertEqual(integer, fake)
    }

    func testSequentialReconstructionFeedsEachBlockTheQuantizedStream() throws {
        try Fixtures.require()
        let par = try quantize(try recipe("p", schedule("parallel")), dir + "/p.safetensors")
        let seq = try quantize(try recipe("s", schedule("sequential")), dir + "/s.safetensors")
        let p = try XCTUnwrap(par["reconstruction"] as? [[String: Any]]), s = try XCTUnwrap(seq["reconstruction"] as? [[String: Any]])
        // The first unit sees the float images either way; later blocks see other inputs.
        XCTAssertEqual(p[0]["loss_before"] as? Double, s[0]["loss_before"] as? Double)
        XCTAssertNotEqual(p[5]["loss_before"] as? Double, s[5]["loss_before"] as? Double)
        XCTAssertEqual(s.map { $0["sequential"] as? Bool }, Array(repeating: true, count: s.count))
    }
}
