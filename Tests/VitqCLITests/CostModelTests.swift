import Foundation
import VitqRuntime
import VitqTestSupport
import XCTest

/// `vitq plan`'s model against hand computations, and its probe against a real run.
final class CostModelTests: XCTestCase {
    let p = CostProfile(model: "m", recipe: "r", cpu: "avx2", stage1SecondsPerImage: 1, stage2SecondsPerImage: 2, units: 5,
                        candidateEvaluations: 50, taskBytes: 3, resultBytesPerShard: 7, storedBytesPerImage: 10, transientBytesPerImage: 5,
                        baseBytes: 100, modelFileBytes: 1000, imageBytes: 10, shardImages: 8)

    func testEvenShardsOverWorkersAndInProcess() {
        // 32 images = 4 shards of 8; 4 workers of 2 cores: one shard each, its 8 images 2 at a time.
        let q = CostModel.predict(p, images: 32, workers: 4, cores: 2)
        XCTAssertEqual(q.shards, 4)
        XCTAssertEqual(q.stage1Seconds, 8 * 1 / 2)
        XCTAssertEqual(q.stage2Seconds, 4 * 2)
        XCTAssertEqual(q.cpuSeconds, 32 * 3)
        XCTAssertEqual(q.peakBytesPerWorker, 100 + 8 * 10 + 8 * 5)
        XCTAssertEqual(q.wireBytes, 4 * (1000 + 32 * 10) + 4 * (3 + 7))
        // In process: one "worker" holds the 4 shards and nothing goes on the wire.
        let local = CostModel.predict(p, images: 32, workers: 0, cores: 2)
        XCTAssertEqual(local.stage1Seconds, 32 * 1 / 2)
        XCTAssertEqual(local.stage2Seconds, 16 * 2)
        XCTAssertEqual(local.peakBytesPerWorker, 100 + 320 + 40)
        XCTAssertEqual(local.wireBytes, 0)
    }

    func testUnevenShardsSharedCoresAndABudget() {
        // 20 images: shards of 8, 8 and 4. One worker of 2 cores: 4 + 4 + 2 rounds of the search.
        XCTAssertEqual(CostModel.predict(p, images: 20, workers: 1, cores: 2).stage2Seconds, 10 * 2)
        // Two workers: the busiest holds two full shards.
        XCTAssertEqual(CostModel.predict(p, images: 20, workers: 2, cores: 2).stage2Seconds, 8 * 2)
        // Four one-core workers on a 2-core machine: three hold a shard, 3 threads on 2 cores.
        let shared = CostModel.predict(p, images: 20, workers: 4, cores: 1, sharedCores: 2)
        XCTAssertEqual(shared.stage2Seconds, 8 * 2 * 1.5, accuracy: 1e-12)
        // A 50-byte budget: 30 of the 80 stored bytes spill.
        let budgeted = CostModel.predict(p, images: 32, workers: 4, cores: 2, budget: 50)
        XCTAssertEqual(budgeted.spilledBytesPerWorker, 30)
        XCTAssertEqual(budgeted.peakBytesPerWorker, 100 + 50 + 40)
    }

    /// A profile's sizes are checked before use, and the arithmetic saturates rather than traps.
    func testAHostileProfileIsOneLineAndHugeSizesSaturate() throws {
        var q = p
        q.storedBytesPerImage = 1 << 50
        XCTAssertEqual(CostModel.predict(q, images: 1 << 30, workers: 1, cores: 1).peakBytesPerWorker, .max)
        XCTAssertNil(p.problem)
        q.stage1SecondsPerImage = -1
        XCTAssertNotNil(q.problem)
        let dir = makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var bad = p
        bad.imageBytes = -5
        let path = dir + "/profile.json"
        try JSONEncoder().encode(bad).write(to: URL(fileURLWithPath: path))
        let r = try CLIRunner.run(["plan", "unused.safetensors", "--profile", path])
        XCTAssertEqual(r.status, 1)
        XCTAssertEqual(r.stderr, "vitq: error: --profile \(path): imageBytes -5 is outside 0...2^50\n")
        XCTAssertEqual(r.stdout, "")
    }

    /// The probe runs the real search: its units and candidates are those of a real run of the
    /// same recipe, and its wire bytes and worker memory are those of a one-worker run within 25%.
    func testTheProbeCountsWhatARealRunDoes() throws {
        try Fixtures.require()
        let dir = makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let plan = try CLIRunner.run(["plan", Fixtures.vitTiny, "--images", "8", "--workers", "1", "--recipe", "ptq4vit-fast", "--local", "--json"])
        XCTAssertEqual(plan.status, 0, plan.stderr)
        let j = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(plan.stdout.utf8)) as? [String: Any])
        let profile = try XCTUnwrap(j["profile"] as? [String: Any]), predicted = try XCTUnwrap((j["predictions"] as? [[String: Any]])?.first)
        let run = try CLIRunner.run(["quantize", Fixtures.vitTiny, "--data", Fixtures.even500Images, "--calib", "8", "--recipe", "ptq4vit-fast",
                                     "--out", dir + "/q.safetensors", "--workers", "1", "--json"])
        XCTAssertEqual(run.status, 0, run.stderr)
        let m = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(profile["candidateEvaluations"] as? Int, m["candidate_evaluations"] as? Int)
        let wire = Double(try XCTUnwrap(m["wire_bytes_total"] as? Int)), wirePredicted = try XCTUnwrap((predicted["wireBytes"] as? NSNumber)?.doubleValue)
        XCTAssertEqual(wirePredicted / wire, 1, accuracy: 0.25, "wire bytes: predicted \(wirePredicted), measured \(wire)")
        let rss = Double(try XCTUnwrap((m["worker_peak_rss_bytes"] as? [String: Int])?.values.first))
        let rssPredicted = try XCTUnwrap((predicted["peakBytesPerWorker"] as? NSNumber)?.doubleValue)
        XCTAssertEqual(rssPredicted / rss, 1, accuracy: 0.25, "worker peak RSS: predicted \(rssPredicted), measured \(rss)")
    }
}
