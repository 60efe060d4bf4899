import Foundation
import VitqDistributed
import VitqFormats
import VitqQuant

/// An executor that keeps every finished sensitivity probe in the coordinator's journal and
/// answers a probe the journal already holds (after `--resume`) without sending it again; other
/// units pass through. A probe is keyed by the sha256 of its task's JSON, so only the very same
/// probe is reused.
final class ProbeJournalExecutor: SearchExecutor, @unchecked Sendable {
    private let base: SearchExecutor
    private let journal: DecisionJournal
    private let lock = NSLock()
    private var answered = 0
    /// Probes answered from the journal.
    var resumed: Int { lock.withLock { answered } }

    init(_ base: SearchExecutor, journal: DecisionJournal) { self.base = base; self.journal = journal }

    func run(_ unit: WorkUnit) throws -> WorkResult {
        guard case let .probe(task) = unit else { return try base.run(unit) }
        let key = SHA256.hex(of: try ProtocolJSON.encoder().encode(task))
        if let sums = journal.probes[key] {
            lock.withLock { answered += 1 }
            return .counts(sums)
        }
        let result = try base.run(unit)
        if let sums = result.counts { try journal.append(JournaledProbe(probe: task.label, task: key, sums: sums)) }
        return result
    }
}
