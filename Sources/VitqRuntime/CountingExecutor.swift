import Foundation
import VitqQuant

/// Counts the candidates scored (one per candidate of every score unit) passing through an
/// executor; safe to use from several search threads.
final class CountingExecutor: SearchExecutor {
    let inner: SearchExecutor
    private let lock = NSLock()
    private var count = 0
    init(_ inner: SearchExecutor) { self.inner = inner }

    /// The candidates scored so far.
    var candidateEvaluations: Int { lock.withLock { count } }

    func run(_ unit: WorkUnit) throws -> WorkResult {
        if case let .score(task) = unit { lock.withLock { count += task.candidates.count } }
        return try inner.run(unit)
    }
}
