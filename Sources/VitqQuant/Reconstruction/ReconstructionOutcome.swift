/// The learned step sizes of one attention block's Q, K and V operands.
public struct LearnedAttention: Equatable, Sendable, Codable {
    public var q: OperandQuant, k: OperandQuant, v: OperandQuant
    public init(q: OperandQuant, k: OperandQuant, v: OperandQuant) { self.q = q; self.k = k; self.v = v }
}

/// What block reconstruction changed: the learned integers of each reconstructed linear op
/// (the hard rounding, [out, in]), the learned input quantizers, the learned attention
/// quantizers by block (`blocks.i.attn`), and how each unit went. One unit's outcome is what a
/// worker returns for a ``ReconstructionTask``; the run's is the merge of every unit's.
public struct ReconstructionOutcome: Equatable, Sendable {
    public var integers: [String: [Int8]] = [:]
    public var inputs: [String: OperandQuant] = [:]
    public var attention: [String: LearnedAttention] = [:]
    public var units: [UnitReconstructionStats] = []

    public init(integers: [String: [Int8]] = [:], inputs: [String: OperandQuant] = [:], attention: [String: LearnedAttention] = [:],
                units: [UnitReconstructionStats] = []) {
        self.integers = integers; self.inputs = inputs; self.attention = attention; self.units = units
    }

    /// Adds another unit's outcome (units touch disjoint ops; on a clash the first stays).
    public mutating func merge(_ other: ReconstructionOutcome) {
        integers.merge(other.integers) { a, _ in a }
        inputs.merge(other.inputs) { a, _ in a }
        attention.merge(other.attention) { a, _ in a }
        units += other.units
    }
}

/// One unit of parallel-mode block reconstruction as a unit of work (``WorkUnit/reconstruct(_:)``):
/// the unit (`patch_embed.proj`, `blocks.i`, `head`, `head_dist`), its index in forward order
/// (which seeds its batches), and the search's decisions of the ops it reads. It needs stage 1's
/// data of every calibration image, so one worker answers it for the whole set
/// (``BlockReconstruction/reconstruct(_:model:stores:settings:)``, also the in-process path).
public struct ReconstructionTask: Equatable, Sendable, Codable {
    public var unit: String
    public var index: Int
    /// The decisions of the ops whose name is the unit's or starts with the unit's and a dot, by op.
    public var decisions: [OpDecision]

    public init(unit: String, index: Int, decisions: [OpDecision]) { self.unit = unit; self.index = index; self.decisions = decisions }

    /// The task of `unit` (at `index`) with the decisions of its ops taken from `all`.
    public init(unit: String, index: Int, from all: [String: OpDecision]) {
        self.init(unit: unit, index: index, decisions: all.keys.sorted().filter { Self.belongs($0, to: unit) }.map { all[$0]! })
    }

    /// Whether op `op` is part of unit `unit`.
    public static func belongs(_ op: String, to unit: String) -> Bool { op == unit || op.hasPrefix(unit + ".") }
}
