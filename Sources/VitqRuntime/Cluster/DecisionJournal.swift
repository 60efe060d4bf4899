import Foundation
import VitqDistributed
import VitqFormats
import VitqQuant

/// A sensitivity probe's merged sums as the journal keeps them, keyed by the sha256 of the
/// probe's task (its canonical JSON), so a resumed run reuses exactly the probes it would redo.
struct JournaledProbe: Codable, Equatable {
    var probe: String
    var task: String
    var sums: [Double]
}

/// A finished reconstruction unit as the journal keeps it, keyed like a probe by the sha256 of
/// its task's JSON; the learned integers as base64 of their bytes.
struct JournaledReconstruction: Codable, Equatable {
    var reconstruction: String
    var task: String
    var stats: UnitReconstructionStats
    var integers: [String: String]
    var inputs: [String: OperandQuant]
    var attention: [String: LearnedAttention]

    /// `o` is one unit's outcome, as every accepted reconstruction result is.
    init(task: String, outcome o: ReconstructionOutcome) {
        stats = o.units[0]; reconstruction = stats.unit; self.task = task
        integers = o.integers.mapValues { codes in codes.withUnsafeBytes { Data($0).base64EncodedString() } }
        inputs = o.inputs; attention = o.attention
    }

    /// The outcome, or nil when an integer array is not base64.
    var outcome: ReconstructionOutcome? {
        var decoded: [String: [Int8]] = [:]
        for (op, text) in integers {
            guard let bytes = Data(base64Encoded: text) else { return nil }
            decoded[op] = bytes.map { Int8(bitPattern: $0) }
        }
        return ReconstructionOutcome(integers: decoded, inputs: inputs, attention: attention, units: [stats])
    }
}

/// The coordinator's journal (Docs/PROTOCOL.md §5): a header line naming the run, then one
/// ``OpDecision`` (or one finished sensitivity probe, ``JournaledProbe``, or reconstruction
/// unit, ``JournaledReconstruction``) per line, each fsynced
/// before the op counts as done. Resuming reads it back,
/// discarding a torn last line, and checks every decision like a fresh result: a decision for an
/// unknown op, a second line for the same op, or quantizers that do not fit the op are refused
/// with one line naming the journal and the op.
///
/// A new journal is created (exclusively, never over an existing file) with the first decision,
/// so a run that fails before any op is decided — a failed bind, say — leaves nothing behind.
final class DecisionJournal: @unchecked Sendable {
    struct Header: Codable { var vitq_journal: Int; var run: String }

    let path: String
    private let fingerprint: String
    private var handle: FileHandle?
    private let lock = NSLock()

    /// Opens the journal of run `fingerprint`. Without `resume` the file must not exist; with
    /// it, an existing file must belong to the same run and its decisions, each passed to
    /// `check` (which throws a one-line reason), are returned in ``decisions``.
    init(path: String, fingerprint: String, resume: Bool, check: (OpDecision) throws -> Void = { _ in }) throws {
        self.path = path
        self.fingerprint = fingerprint
        var replayed: [OpDecision] = []
        var replayedProbes: [String: [Double]] = [:]
        var replayedUnits: [String: ReconstructionOutcome] = [:]
        if FileManager.default.fileExists(atPath: path) {
            guard resume else {
                throw ClusterError.journal(path: path, detail: "exists; pass --resume to finish that run, or remove it to start over")
            }
            let data: Data
            do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
                throw ClusterError.journal(path: path, detail: "cannot read: \(error.localizedDescription)")
            }
            var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            // The last element is empty after a complete line, or a torn write: drop it either way.
            let tornBytes = lines.removeLast().count
            guard let first = lines.first, let header = try? JSONDecoder().decode(Header.self, from: Data(first)) else {
                throw ClusterError.journal(path: path, detail: "not a vitq journal")
            }
            guard header.run == fingerprint else {
                throw ClusterError.journal(path: path, detail: "belongs to another run (model, config overrides, images, preprocessing, recipe or shards differ): "
                                           + "it records run \(header.run.prefix(80)), this is run \(fingerprint)")
            }
            let decoder = ProtocolJSON.decoder()
            var seen: Set<String> = []
            for (i, line) in lines.dropFirst().enumerated() {
                let n = i + 2
                if let p = try? decoder.decode(JournaledProbe.self, from: Data(line)) {
                    guard p.task.count == 64, p.sums.count == 3, p.sums.allSatisfy({ $0.isFinite && $0 >= 0 }), p.sums[2] >= 1, p.sums[1] <= p.sums[2] else {
                        throw ClusterError.journal(path: path, detail: "line \(n): probe \(p.probe): not a task hash and 3 finite sums over at least one image")
                    }
                    guard replayedProbes.updateValue(p.sums, forKey: p.task) == nil else {
                        throw ClusterError.journal(path: path, detail: "line \(n): a second line for probe \(p.probe)")
                    }
                    continue
                }
                if let r = try? decoder.decode(JournaledReconstruction.self, from: Data(line)) {
                    guard r.task.count == 64, let outcome = r.outcome, r.stats.unit == r.reconstruction else {
                        throw ClusterError.journal(path: path, detail: "line \(n): reconstruction unit \(r.reconstruction): not a task hash, its stats and base64 integers")
                    }
                    guard replayedUnits.updateValue(outcome, forKey: r.task) == nil else {
                        throw ClusterError.journal(path: path, detail: "line \(n): a second line for reconstruction unit \(r.reconstruction)")
                    }
                    continue
                }
                guard let d = try? decoder.decode(OpDecision.self, from: Data(line)) else {
                    throw ClusterError.journal(path: path, detail: "line \(n) is neither a decision, a probe nor a reconstruction unit")
                }
                guard seen.insert(d.journalKey).inserted else {
                    throw ClusterError.journal(path: path, detail: "line \(n): a second decision for op \(d.op)\(d.bits.map { " at \($0) bits" } ?? "")")
                }
                do { try check(d) } catch {
                    throw ClusterError.journal(path: path, detail: "line \(n): op \(d.op): \(error)")
                }
                replayed.append(d)
            }
            if tornBytes > 0 {
                do {
                    let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
                    try h.truncate(atOffset: UInt64(data.count - tornBytes))
                    try h.close()
                } catch { throw ClusterError.journal(path: path, detail: "cannot drop the torn last line: \(error.localizedDescription)") }
            }
            handle = try Self.openForAppending(path)
        }
        decisions = replayed
        probes = replayedProbes
        reconstructions = replayedUnits
    }

    /// The decisions replayed when it was opened.
    let decisions: [OpDecision]
    /// The probes' sums replayed when it was opened, by task hash.
    let probes: [String: [Double]]

    /// The reconstruction units finished before, by task hash (each checked against its task
    /// like a RESULT before use).
    let reconstructions: [String: ReconstructionOutcome]

    /// Appends a finished reconstruction unit and fsyncs.
    func append(_ unit: JournaledReconstruction) throws {
        try append(line: try ProtocolJSON.encoder().encode(unit))
    }

    /// Appends `decision` and fsyncs (the first one creates the file with its header).
    func append(_ decision: OpDecision) throws {
        try append(line: try ProtocolJSON.encoder().encode(decision))
    }

    /// Appends a finished probe and fsyncs.
    func append(_ probe: JournaledProbe) throws {
        try append(line: try ProtocolJSON.encoder().encode(probe))
    }

    private func append(line encoded: Data) throws {
        var line = encoded
        line.append(UInt8(ascii: "\n"))
        try lock.withLock {
            guard let handle else {
                var first = try JSONEncoder().encode(Header(vitq_journal: 1, run: fingerprint))
                first.append(UInt8(ascii: "\n"))
                first.append(line)
                do { try AtomicFile.write(first, to: path, replacing: false) } catch {
                    throw ClusterError.journal(path: path, detail: "cannot create: \(error)")
                }
                self.handle = try Self.openForAppending(path)
                return
            }
            do {
                try handle.write(contentsOf: line)
                try handle.synchronize()
            } catch { throw ClusterError.journal(path: path, detail: "\(error)") }
        }
    }

    func close() { lock.withLock { try? handle?.close() } }

    private static func openForAppending(_ path: String) throws -> FileHandle {
        do {
            let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try h.seekToEnd()
            return h
        } catch { throw ClusterError.journal(path: path, detail: "\(error)") }
    }
}
