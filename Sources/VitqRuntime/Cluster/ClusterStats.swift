import Foundation
import VitqDistributed
import VitqFormats

/// What the coordinator tells operators: per-worker throughput and traffic, bytes on the wire
/// per op, ops done and the ETA, as progress lines on stderr and a JSON status file rewritten
/// atomically.
public final class ClusterStats: @unchecked Sendable {
    struct Peer {
        var name = ""
        /// The CURVE public key the peer authenticated with.
        var key: String?
        var joined: Date?
        var shards: Set<Int> = []
        var results = 0
        var bytesIn = 0
        var bytesOut = 0
        var dropped: String?
        /// The last memory report of its RESULTs.
        var memory: WorkerMemory?
    }
    struct OpTraffic { var bytesOut = 0; var bytesIn = 0 }

    private let lock = NSLock()
    private var peers: [PeerID: Peer] = [:]
    private var requestOp: [RequestID: String] = [:]
    private var opTraffic: [String: OpTraffic] = [:]
    private var opsDone: Int
    private let opsTotal: Int
    private let resumedOps: Int
    private let start = Date()
    private let statusPath: String?
    private let progress: @Sendable (String) -> Void
    private var lastStatusWrite = Date.distantPast
    /// Dropped workers kept for the status file (the most recent; older ones are forgotten,
    /// their bytes kept in the totals), so a flood of peers cannot grow it without bound.
    public static let droppedKept = 64
    private var dropOrder: [PeerID] = []
    private var forgottenBytes = 0

    /// Stats for a run of `opsTotal` ops of which `resumed` came from the journal; the status
    /// file (if any) goes to `statusPath`, progress lines to `progress`.
    public init(opsTotal: Int, resumed: Int, statusPath: String?, progress: @escaping @Sendable (String) -> Void) {
        self.opsTotal = opsTotal; opsDone = resumed; resumedOps = resumed
        self.statusPath = statusPath; self.progress = progress
    }

    // MARK: events (the I/O thread)

    /// `bytes` arrived from `peer`.
    public func received(_ bytes: Int, from peer: PeerID) {
        lock.withLock { peers[peer, default: Peer()].bytesIn += bytes }
    }
    /// `peer` joined as worker `name`, authenticated with CURVE `key` (if any).
    public func hello(_ peer: PeerID, name: String, key: String? = nil) {
        lock.withLock { peers[peer]?.name = name; peers[peer]?.key = key; peers[peer]?.joined = Date() }
    }
    func sent(_ bytes: Int, to peer: PeerID) { lock.withLock { peers[peer]?.bytesOut += bytes } }
    func assigned(_ shard: Int, to peer: PeerID) {
        lock.withLock {
            for k in peers.keys { peers[k]!.shards.remove(shard) }
            peers[peer]?.shards.insert(shard)
        }
    }
    /// `peer` was dropped for `reason`.
    public func dropped(_ peer: PeerID, reason: String) {
        lock.withLock {
            peers[peer]?.dropped = reason
            peers[peer]?.shards = []
            // Peers that never joined are forgotten, so a flood of bogus peers costs nothing;
            // of the dropped workers only the most recent are kept.
            if let p = peers[peer], p.joined == nil {
                forgottenBytes += p.bytesIn + p.bytesOut
                peers[peer] = nil
            } else if peers[peer] != nil {
                dropOrder.removeAll { $0 == peer }
                dropOrder.append(peer)
                while dropOrder.count > Self.droppedKept {
                    let old = dropOrder.removeFirst()
                    if let p = peers.removeValue(forKey: old) { forgottenBytes += p.bytesIn + p.bytesOut }
                }
            }
        }
    }
    func submitted(_ request: RequestID, op: String) {
        lock.withLock { requestOp[request] = op }
    }
    func taskSent(_ request: RequestID, bytes: Int) {
        lock.withLock { if let op = requestOp[request] { opTraffic[op, default: OpTraffic()].bytesOut += bytes } }
    }
    func resultArrived(_ request: RequestID, bytes: Int, from peer: PeerID, memory: WorkerMemory?) {
        lock.withLock {
            if let op = requestOp[request] { opTraffic[op, default: OpTraffic()].bytesIn += bytes }
            peers[peer]?.results += 1
            if let memory { peers[peer]?.memory = memory }
        }
    }
    func completed(_ request: RequestID) { lock.withLock { _ = requestOp.removeValue(forKey: request) } }

    func opDone(_ op: String) {
        let line: String = lock.withLock {
            opsDone += 1
            let elapsed = Date().timeIntervalSince(start)
            let t = opTraffic[op] ?? OpTraffic()
            let workers = live.map { p in
                String(format: "%@ %.1f results/s", p.name, Double(p.results) / max(elapsed, 1e-3))
                    + (p.memory.map { " peak \(Self.bytes($0.peakResidentBytes))" + ($0.bytesSpilled > 0 ? " spilled \(Self.bytes($0.bytesSpilled))" : "") } ?? "")
            }
            return String(format: "[%d/%d] %@  %@ on the wire  ETA %@  |  %@", opsDone, opsTotal, op,
                          Self.bytes(t.bytesOut + t.bytesIn), Self.duration(eta(elapsed) ?? 0), workers.joined(separator: ", "))
        }
        progress(line)
    }

    // MARK: queries

    /// Seconds left at the rate of the ops decided in this run (nil before the first). Call under the lock.
    private func eta(_ elapsed: Double) -> Double? {
        let fresh = opsDone - resumedOps
        return fresh > 0 ? elapsed / Double(fresh) * Double(opsTotal - opsDone) : nil
    }

    func hasJoined(_ peer: PeerID) -> Bool { lock.withLock { peers[peer]?.joined != nil } }
    func name(_ peer: PeerID) -> String {
        lock.withLock {
            peers[peer].map { p in (p.name.isEmpty ? peer.id : "\(p.name) (\(peer.id))") + (p.key.map { ", key \($0)" } ?? "") } ?? peer.id
        }
    }
    private var live: [Peer] { peers.values.filter { $0.joined != nil && $0.dropped == nil }.sorted { $0.joined! < $1.joined! } }

    /// Bytes on the wire per op (TASKs out, RESULTs in).
    var wireBytesPerOp: [String: Int] { lock.withLock { wirePerOp } }
    private var wirePerOp: [String: Int] { opTraffic.mapValues { $0.bytesIn + $0.bytesOut } }
    /// Per worker name, the last memory report of its RESULTs (the largest, if names repeat).
    public var workerMemory: [String: WorkerMemory] {
        lock.withLock {
            var m: [String: WorkerMemory] = [:]
            for p in peers.values { if let r = p.memory, r.peakResidentBytes >= (m[p.name]?.peakResidentBytes ?? -1) { m[p.name] = r } }
            return m
        }
    }
    /// All bytes on the wire, both ways, including JOB messages.
    public var totalWireBytes: Int { lock.withLock { peers.values.reduce(forgottenBytes) { $0 + $1.bytesIn + $1.bytesOut } } }

    /// Rewrites the status file (at most twice a second, and at the end).
    public func writeStatus(state: CoordinatorState, force: Bool = false) {
        guard let statusPath else { return }
        let now = Date()
        // At most twice a second (the I/O thread ticks four times a second), and at the end.
        let due: Bool = lock.withLock {
            guard force || state.phase == .finished || now.timeIntervalSince(lastStatusWrite) >= 0.5 else { return false }
            lastStatusWrite = now
            return true
        }
        guard due else { return }
        let obj: [String: Any] = lock.withLock {
            let elapsed = now.timeIntervalSince(start)
            return [
                "phase": "\(state.phase)", "ops_done": opsDone, "ops_total": opsTotal, "elapsed_seconds": elapsed,
                "eta_seconds": eta(elapsed).map { $0 as Any } ?? NSNull(),
                "outstanding_requests": state.outstanding.count,
                "workers": peers.filter { $0.value.joined != nil }.sorted { $0.value.joined! < $1.value.joined! }.map { id, p -> [String: Any] in
                    ["peer": id.id, "name": p.name, "key": p.key ?? NSNull(), "shards": p.shards.sorted(), "results": p.results,
                     "results_per_second": Double(p.results) / max(elapsed, 1e-3), "bytes_in": p.bytesIn, "bytes_out": p.bytesOut,
                     "state": p.dropped.map { "dropped: \($0)" } ?? "live",
                     "peak_rss_bytes": p.memory.map { $0.peakResidentBytes as Any } ?? NSNull(),
                     "spilled_bytes": p.memory.map { $0.bytesSpilled as Any } ?? NSNull()]
                },
                "wire_bytes_per_op": wirePerOp,
            ]
        }
        if let data = try? JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys, .prettyPrinted]) {
            try? AtomicFile.write(data, to: statusPath)
        }
    }

    static func bytes(_ n: Int) -> String {
        n >= 1 << 20 ? String(format: "%.1f MiB", Double(n) / 1048576) : String(format: "%.1f KiB", Double(n) / 1024)
    }
    static func duration(_ s: Double) -> String {
        s >= 60 ? String(format: "%dm%02ds", Int(s) / 60, Int(s) % 60) : String(format: "%.0fs", s)
    }
}
