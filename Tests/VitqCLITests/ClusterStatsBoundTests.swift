import Foundation
import VitqRuntime
import VitqDistributed
import VitqTestSupport
import XCTest

/// The status file's peer list stays bounded (issue 16 item 4: it kept all 10,001 peers that
/// ever joined), and the wire totals still count the forgotten peers' bytes.
final class ClusterStatsBoundTests: XCTestCase {
    func testTenThousandJoinedAndDroppedPeersLeaveABoundedStatusFile() throws {
        let dir = makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/status.json"
        let stats = ClusterStats(opsTotal: 1, resumed: 0, statusPath: path, progress: { _ in })
        for i in 0..<10_001 {
            let peer = PeerID(String(format: "%08x", i))
            stats.received(100, from: peer)
            stats.hello(peer, name: "flood-\(i)")
            if i != 10_000 { stats.dropped(peer, reason: "missed 3 heartbeats") }
        }
        let job = Job(model: .path(path: "/m", sha256: String(repeating: "ab", count: 32)), modelSpec: JobModelSpec(family: "vit", spec: "{}"), images: .path(path: "/i", sha256: String(repeating: "ab", count: 32)),
                      recipe: "{}", shards: [ShardRange(0..<4)])
        stats.writeStatus(state: CoordinatorState(settings: CoordinatorSettings(job: job, ops: ["x"]), clock: ManualClock()), force: true)
        let j = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        let workers = try XCTUnwrap(j["workers"] as? [[String: Any]])
        XCTAssertEqual(workers.count, ClusterStats.droppedKept + 1, "the live peer and the latest dropped ones")
        XCTAssertEqual(workers.filter { ($0["state"] as? String) == "live" }.map { $0["name"] as? String }, ["flood-10000"])
        XCTAssertEqual(stats.totalWireBytes, 10_001 * 100, "forgotten peers still count in the totals")
    }
}
