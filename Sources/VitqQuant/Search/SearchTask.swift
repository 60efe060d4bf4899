import Foundation

/// Which operand of an op a task searches: the first (a linear op's weight, a matmul's A)
/// or the second (a linear op's input, a matmul's B).
public enum SearchOperand: Int, Codable, Sendable {
    case first = 0, second = 1
}

/// The candidates of one operand: candidate c scales every group's base step by
/// `multipliers[c]` (ALGORITHMS.md §3: Δ0·(α + i(β−α)/n)). For a twin GELU quantizer the
/// multiplier scales Δ2 and Δ1 follows (``TwinCandidates/gelu(delta2:bits:)``); for a twin
/// softmax quantizer Δ2 stays 1/2^(k−1) and candidate c sets the shift to `shifts[c]`.
public struct CandidateSet: Equatable, Sendable, Codable {
    public var base: OperandQuant
    public var multipliers: [Float]
    /// Twin softmax candidates (Δ1 = Δ2/2^shift); nil otherwise.
    public var shifts: [Int]?

    public init(base: OperandQuant, multipliers: [Float], shifts: [Int]? = nil) {
        self.base = base; self.multipliers = multipliers; self.shifts = shifts
    }

    /// α + i(β−α)/n for i in 0..<n.
    public static func linear(alpha: Float, beta: Float, count n: Int) -> [Float] {
        (0..<n).map { alpha + Float($0) * (beta - alpha) / Float(n) }
    }

    public var count: Int { shifts?.count ?? multipliers.count }

    /// The operand's quantizer for candidate `c`.
    public func quantizer(_ c: Int) -> OperandQuant {
        switch base {
        case var .uniform(q):
            let m = multipliers[c]
            q.scales = q.scales.map { $0 * m }
            return .uniform(q)
        case let .twin(ts):
            if let shifts {
                return .twin(ts.map { TwinCandidates.softmax(delta2: $0.delta2, bits: $0.bits, shift: shifts[c]) })
            }
            return .twin(ts.map { TwinCandidates.gelu(delta2: $0.delta2 * multipliers[c], bits: $0.bits) })
        case .perToken:
            return base   // nothing to search: the steps come from each row
        }
    }
}

/// How twin uniform candidates are formed (ALGORITHMS.md §3), with the power-of-two ratio
/// Δ2/Δ1 enforced by construction.
public enum TwinCandidates {
    /// |min GELU| ≈ 0.16997: the negative range R1 must reach.
    public static let geluNegativeRange: Float = 0.17

    /// A GELU twin quantizer with R2 step `delta2`: R1 gets the finest step Δ2/2^m that still
    /// reaches −0.17 with its 2^(k−1)−1 levels (m ≥ 0).
    public static func gelu(delta2: Float, bits: Int, maxShift: Int = 20) -> TwinQuant {
        let levels = Float((1 << (bits - 1)) - 1)
        let ratio = delta2 * levels / geluNegativeRange
        let m = ratio >= 1 ? min(maxShift, Int(log2(ratio).rounded(.down))) : 0
        return TwinQuant(kind: .gelu, bits: bits, delta1: Float(sign: .plus, exponent: -m, significand: delta2), shift: m)
    }

    /// The softmax twin quantizer with R2 step `delta2` (1/2^(k−1) covers [0, 1)) and Δ1 = Δ2/2^shift.
    public static func softmax(delta2: Float, bits: Int, shift: Int) -> TwinQuant {
        TwinQuant(kind: .softmax, bits: bits, delta1: Float(sign: .plus, exponent: -shift, significand: delta2), shift: shift)
    }
}

/// One unit of stage-2 work, the thing workers receive: score every candidate of one operand
/// of one op on a shard of calibration images, the other operand held at its current quantizer.
/// The result is a ``ShardScores``; shards add in shard order.
public struct SearchTask: Equatable, Sendable, Codable {
    /// The op: a linear op's timm name (`blocks.3.mlp.fc1`) or `blocks.3.attn.matmul1` / `matmul2`.
    public var op: String
    public var operand: SearchOperand
    public var candidates: CandidateSet
    /// The current quantizers of the first and second operand (the searched one is replaced per candidate).
    public var current: [OperandQuant]
    /// Output columns are scored in this many groups, each choosing its own candidate:
    /// 1 (one scale), 3 (qkv's q, k, v parts), the output channels, or the heads.
    public var groups: Int
    public var metric: SearchMetric
    /// Liu et al.'s ranking loss weight γ on attention scores (matmul1 only; 0 = off) and margin θ.
    public var rankingWeight: Float
    public var rankingMargin: Float

    public init(op: String, operand: SearchOperand, candidates: CandidateSet, current: [OperandQuant], groups: Int, metric: SearchMetric,
                rankingWeight: Float = 0, rankingMargin: Float = 0) {
        self.op = op; self.operand = operand; self.candidates = candidates; self.current = current
        self.groups = groups; self.metric = metric; self.rankingWeight = rankingWeight; self.rankingMargin = rankingMargin
    }

    /// Whether the ranking term is scored.
    public var ranks: Bool { rankingWeight > 0 && op.hasSuffix(".matmul1") }
    /// Statistics per (candidate, group): the metric's, then, when ranking, the summed hinge
    /// and the number of neighbour pairs it was summed over.
    public var statsPerGroup: Int { metric.groupStats + (ranks ? 2 : 0) }

    /// The score of a group's totals; lower is better. The ranking term is the mean hinge per
    /// neighbour pair, so γ means the same for any number of images, tokens or heads.
    public func score(_ s: ArraySlice<Double>) -> Double {
        let m = metric.score(s.prefix(metric.groupStats))
        guard ranks else { return m }
        let hinge = s[s.startIndex + metric.groupStats], pairs = s[s.startIndex + metric.groupStats + 1]
        return m + Double(rankingWeight) * (pairs > 0 ? hinge / pairs : 0)
    }

    /// An empty table for this task's results.
    public func emptyScores() -> ShardScores { ShardScores(candidates: candidates.count, groups: groups, stats: statsPerGroup) }
}

/// A task's statistics over one shard: [candidate][group][stat] in Double (see ``SearchMetric``).
public struct ShardScores: Equatable, Sendable, Codable {
    public var candidates: Int
    public var groups: Int
    public var stats: Int
    public var values: [Double]

    public init(candidates: Int, groups: Int, stats: Int, values: [Double]? = nil) {
        self.candidates = candidates; self.groups = groups; self.stats = stats
        self.values = values ?? [Double](repeating: 0, count: candidates * groups * stats)
    }

    /// Adds `other` element-wise (shards are reduced in shard order, so the sum is deterministic).
    public mutating func add(_ other: ShardScores) {
        precondition(other.values.count == values.count, "score tables of different shapes")
        for i in values.indices { values[i] += other.values[i] }
    }

    /// For each group, the candidate with the lowest `score` (ties: the lowest index).
    public func winners(_ score: (ArraySlice<Double>) -> Double) -> [Int] {
        (0..<groups).map { g in
            var best = 0, bestScore = Double.infinity
            for c in 0..<candidates {
                let o = (c * groups + g) * stats
                let s = score(values[o..<o + stats])
                if s < bestScore { best = c; bestScore = s }
            }
            return best
        }
    }
}

/// Bias correction's unit of work (Liu et al.): the error ô − o per output channel of a linear
/// op over a shard, with its final quantizers.
public struct OutputErrorTask: Equatable, Sendable, Codable {
    public var op: String
    public var weight: OperandQuant
    public var input: OperandQuant
    public init(op: String, weight: OperandQuant, input: OperandQuant) { self.op = op; self.weight = weight; self.input = input }
}

/// The sums of an ``OutputErrorTask`` on one shard: Σ (ô − o) per channel, the rows,
/// Σ_rows Σ_k |x_k| (for the rounding-error bound of the correction), and Σ(ô − o)², Σo²
/// over all elements (the op's relative output error).
public struct OutputErrorSums: Equatable, Sendable, Codable {
    public var sums: [Double]
    public var rows: Int
    public var inputAbsSum: Double
    public var squaredError: Double
    public var squaredReference: Double
    public init(sums: [Double], rows: Int, inputAbsSum: Double, squaredError: Double, squaredReference: Double) {
        self.sums = sums; self.rows = rows; self.inputAbsSum = inputAbsSum
        self.squaredError = squaredError; self.squaredReference = squaredReference
    }
    /// Zeros for `n` channels.
    public init(channels n: Int) { self.init(sums: [Double](repeating: 0, count: n), rows: 0, inputAbsSum: 0, squaredError: 0, squaredReference: 0) }
    public mutating func add(_ o: OutputErrorSums) {
        for i in sums.indices { sums[i] += o.sums[i] }
        rows += o.rows
        inputAbsSum += o.inputAbsSum
        squaredError += o.squaredError
        squaredReference += o.squaredReference
    }
    /// ‖ô − o‖ / ‖o‖ over the calibration set.
    public var relativeError: Double { squaredReference > 0 ? (squaredError / squaredReference).squareRoot() : 0 }
    /// The mean error of channel j.
    public func mean(_ j: Int) -> Double { rows > 0 ? sums[j] / Double(rows) : 0 }
}

extension TensorQuant: Codable {
    enum CodingKeys: String, CodingKey { case scheme, granularity, scales, zeroPoints = "zero_points" }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(scheme: try c.decode(QuantScheme.self, forKey: .scheme), granularity: try c.decode(Granularity.self, forKey: .granularity),
                  scales: try c.decode([Float].self, forKey: .scales), zeroPoints: try c.decode([Int32].self, forKey: .zeroPoints))
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(scheme, forKey: .scheme); try c.encode(granularity, forKey: .granularity)
        try c.encode(scales, forKey: .scales); try c.encode(zeroPoints, forKey: .zeroPoints)
    }
}
