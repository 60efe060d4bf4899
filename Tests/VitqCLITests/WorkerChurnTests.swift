import Foundation
import VitqFormats
import VitqTestSupport
import XCTest

/// The coordinator under load: 64 worker processes on loopback (ipc) for the micro distilled
/// DeiT, joining and leaving (SIGKILL and SIGTERM) throughout the run. The run must finish with
/// the in-process bytes, no live worker may be dropped (heartbeats and deadlines do not misfire),
/// and the coordinator's memory and CPU stay bounded (printed for Docs/BENCHMARKS.md).
final class WorkerChurnTests: XCTestCase {
    func testSixtyFourWorkersJoiningAndLeavingGiveTheInProcessBytes() throws {
        try Fixtures.require()
        let dir = makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let recipe = dir + "/churn.yaml"
        try "name: churn\nbase: ptq4vit-fast\nshard_images: 1\n".write(toFile: recipe, atomically: true, encoding: .utf8)
        let calibration = ["--data", Fixtures.even500Images, "--calib-offset", "0", "--calib", "32", "--recipe", recipe]
        let reference = dir + "/in-process.safetensors", out = dir + "/q.safetensors"
        let r = try CLIRunner.run(["quantize", Fixtures.deitMicro] + calibration + ["--out", reference])
        XCTAssertEqual(r.status, 0, r.stderr)

        let endpoint = "ipc://\(dir)/c.ipc"
        let coordinator = try CLIRunner.start(["coordinator", Fixtures.deitMicro] + calibration +
                                              ["--out", out, "--bind", endpoint, "--expect-workers", "32", "--ship", "path", "--json"],
                                              log: dir + "/coordinator.log", stdout: dir + "/coordinator.json")
        var workers: [Process] = []
        func startWorker() throws {
            let i = workers.count
            workers.append(try CLIRunner.start(["worker", "--connect", endpoint, "--threads", "1", "--name", "w\(i)", "--wait", "60", "--once"],
                                               log: dir + "/worker\(i).log"))
        }
        defer { for w in workers where w.isRunning { kill(w.processIdentifier, SIGKILL); w.waitUntilExit() } }
        for _ in 0..<40 { try startWorker() }

        // Every 100 ms until the run ends: one more worker joins (up to 64 in all), and every
        // other tick one that has been up for a while leaves, by SIGKILL or SIGTERM in turn (at most 16).
        var left: Set<String> = []
        var tick = 0
        let start = Date()
        while coordinator.isRunning && Date().timeIntervalSince(start) < 120 {
            Thread.sleep(forTimeInterval: 0.1)
            tick += 1
            if workers.count < 64 { try startWorker() }
            if tick % 2 == 0, left.count < 16 {
                let up = workers.indices.filter { workers[$0].isRunning && !left.contains("w\($0)") && $0 < workers.count - 8 }
                if let i = up.randomElement() {
                    kill(workers[i].processIdentifier, left.count % 2 == 0 ? SIGKILL : SIGTERM)
                    left.insert("w\(i)")
                }
            }
        }
        let status = CLIRunner.wait(coordinator, seconds: 60)
        let wall = Date().timeIntervalSince(start)
        let log = (try? String(contentsOfFile: dir + "/coordinator.log", encoding: .utf8)) ?? ""
        XCTAssertEqual(status, 0, String(log.suffix(3000)))
        XCTAssertEqual(workers.count, 64)
        XCTAssertGreaterThanOrEqual(left.count, 8, "workers left during the run (it lasted \(wall) s)")
        XCTAssertEqual(SHA256.hex(of: try Data(contentsOf: URL(fileURLWithPath: out))),
                       SHA256.hex(of: try Data(contentsOf: URL(fileURLWithPath: reference))))
        XCTAssertTrue(log.contains("moves from"), "a worker that left held a shard, which moved:\n" + String(log.suffix(3000)))
        // Only workers that left are ever dropped.
        for line in log.split(separator: "\n") where line.contains("dropped w") {
            let name = line.split(separator: " ").first { $0.hasPrefix("w") }.map(String.init) ?? ""
            XCTAssertTrue(left.contains(name), "a live worker was dropped: \(line)")
        }
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/coordinator.json"))) as? [String: Any])
        let rss = report["coordinator_peak_rss_bytes"] as? Int ?? 0, cpu = report["coordinator_cpu_seconds"] as? Double ?? -1
        XCTAssertGreaterThan(rss, 0)
        XCTAssertLessThan(rss, 512 << 20, "coordinator peak RSS")
        XCTAssertLessThan(cpu, wall, "the coordinator used less than one core")
        print(String(format: "churn: 64 workers, %d left, %.1f s wall; coordinator peak RSS %.1f MiB, %.2f CPU-seconds",
                     left.count, wall, Double(rss) / 1048576, cpu))
    }
}
