import Foundation
import VitqDistributed
import VitqQuant

/// The coordinator's journal (Docs/PROTOCOL.md §5): a header line naming the run, then one
/// ``OpDecision`` per line, each fsynced before the op counts as done. Resuming reads it back,
/// discarding a torn last line.
final class DecisionJournal {
    struct Header: Codable { var vitq_journal: Int; var run: String }

    let path: String
    private let handle: FileHandle

    /// Opens the journal of run `fingerprint`. Without `resume` the file must not exist; with
    /// it, an existing file must belong to the same run and its decisions are returned.
    init(path: String, fingerprint: String, resume: Bool) throws {
        self.path = path
        let fm = FileManager.default
        var replayed: [OpDecision] = []
        if fm.fileExists(atPath: path) {
            guard resume else {
                throw ClusterError.journal(path: path, detail: "exists; pass --resume to finish that run, or remove it to start over")
            }
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
            // The last element is empty after a complete line, or a torn write: drop it either way.
            let tornBytes = lines.removeLast().count
            guard let first = lines.first, let header = try? JSONDecoder().decode(Header.self, from: Data(first)) else {
                throw ClusterError.journal(path: path, detail: "not a vitq journal")
            }
            guard header.run == fingerprint else {
                throw ClusterError.journal(path: path, detail: "belongs to another run (model, images, recipe or shards differ)")
            }
            let decoder = ProtocolJSON.decoder()
            for (i, line) in lines.dropFirst().enumerated() {
                guard let d = try? decoder.decode(OpDecision.self, from: Data(line)) else {
                    throw ClusterError.journal(path: path, detail: "line \(i + 2) is not a decision")
                }
                replayed.append(d)
            }
            if tornBytes > 0 {
                let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
                try h.truncate(atOffset: UInt64(data.count - tornBytes))
                try h.close()
            }
        } else {
            var line = try JSONEncoder().encode(Header(vitq_journal: 1, run: fingerprint))
            line.append(UInt8(ascii: "\n"))
            guard fm.createFile(atPath: path, contents: line) else { throw ClusterError.journal(path: path, detail: "cannot create") }
        }
        do {
            handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try handle.seekToEnd()
            try handle.synchronize()
        } catch { throw ClusterError.journal(path: path, detail: "\(error)") }
        decisions = replayed
    }

    /// The decisions replayed when it was opened.
    let decisions: [OpDecision]

    /// Appends `decision` and fsyncs.
    func append(_ decision: OpDecision) throws {
        var line = try ProtocolJSON.encoder().encode(decision)
        line.append(UInt8(ascii: "\n"))
        do {
            try handle.write(contentsOf: line)
            try handle.synchronize()
        } catch { throw ClusterError.journal(path: path, detail: "\(error)") }
    }

    func close() { try? handle.close() }
}
