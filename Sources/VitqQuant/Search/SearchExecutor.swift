/// Runs stage-2 units on the calibration shards: in this process (``LocalExecutor``) or on
/// workers. Either way each shard runs ``CandidateScorer/run(_:)`` and the shards' results are
/// merged by ``Reduction``.
public protocol SearchExecutor: AnyObject {
    /// `unit` run on every shard, the results merged in shard order (``Reduction/reduce(_:for:)``).
    func run(_ unit: WorkUnit) throws -> WorkResult
}

/// Why an executor's answer to a unit cannot be used; names the unit's kind and op.
public struct SearchExecutorError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }

    /// The shards' results for `unit` do not merge (none, or of different kinds or shapes).
    public static func unmerged(_ unit: WorkUnit, shards: Int) -> SearchExecutorError {
        SearchExecutorError(description: "\(unit.kind) of op \(unit.op): the results of \(shards) shard(s) do not merge")
    }

    /// `result` is of another kind than `unit` asks for.
    public static func kind(_ result: WorkResult, for unit: WorkUnit) -> SearchExecutorError {
        SearchExecutorError(description: "\(unit.kind) of op \(unit.op): answered with a \(result.kind) result")
    }
}

extension SearchExecutor {
    /// `unit`'s merged result as the type `typed` extracts (such as `\.scores`); throws a
    /// ``SearchExecutorError`` naming the unit if the result is of another kind.
    public func run<Typed>(_ unit: WorkUnit, as typed: (WorkResult) -> Typed?) throws -> Typed {
        let result = try run(unit)
        guard let value = typed(result) else { throw SearchExecutorError.kind(result, for: unit) }
        return value
    }
}
