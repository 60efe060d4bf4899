import Foundation
import VitqModels
import VitqTensor

/// PTQ4ViT's stage 2 in "parallel" mode: every op is searched on FP inputs, independently of
/// the others, so ops can be searched in any order or at once. For each op: start from the
/// max-based Δ0 of both operands, then for R rounds search the first operand (weight / A) with
/// the second fixed, then the second with the first fixed, each group choosing its best
/// candidate; then optionally correct the bias.
public final class ScaleSearch {
    public let model: any SearchableModel
    /// The settings of each op (a mixed-precision recipe gives ops their own grids).
    public let settingsFor: @Sendable (String) -> SearchSettings
    public let executor: SearchExecutor

    public init(model: any SearchableModel, settingsFor: @escaping @Sendable (String) -> SearchSettings, executor: SearchExecutor) {
        self.model = model; self.settingsFor = settingsFor; self.executor = executor
    }

    /// Searches `op` (a linear op name or `<attention block>.matmul1/2`).
    public func search(_ op: String) throws -> OpDecision {
        let settings = settingsFor(op)
        let maxima = try executor.run(.ranges(op: op), as: \.ranges)
        let (bases, groups) = initialQuantizers(op, maxima: maxima, settings: settings)
        var current = bases
        // The other operand's quantizer when each operand was last searched: searching again
        // with the same one would return the same winner (the search is deterministic), so it
        // is skipped. This ends the alternation once it has converged.
        var searchedWith: [OperandQuant?] = [nil, nil]
        for _ in 0..<settings.rounds {
            for operand in [SearchOperand.first, .second] {
                let i = operand.rawValue
                if searchedWith[i] == current[1 - i] { continue }
                if case .perToken = current[i] { continue }   // nothing to search
                searchedWith[i] = current[1 - i]
                let task = SearchTask(op: op, operand: operand, candidates: candidates(bases[i], settings: settings),
                                      current: current, groups: groups[i], metric: settings.metric,
                                      rankingWeight: settings.rankingWeight, rankingMargin: settings.rankingMargin)
                let total = try executor.run(.score(task), as: \.scores)
                current[i] = Self.choose(task.candidates, winners: total.winners(task.score), groups: groups[i])
            }
        }
        var bias: [Float]? = nil
        var relativeError: Double? = nil
        if !isMatmul(op), let lin = linear(op) {
            // Liu et al.: subtract the mean output error per channel, limited to what rounding
            // can cause, |E[ε]| ≤ ½Δw·E[Σ|x|] + ½Δx·Σ|w| + ¼ΔwΔx·K. A larger mean comes from
            // clipping (outlier tokens of one channel, e.g. ViT-Tiny's blocks.7 GELU channel);
            // it differs token by token, and shifting every token by it breaks the model.
            let sums = try executor.run(.outputError(OutputErrorTask(op: op, weight: current[0], input: current[1])), as: \.outputError)
            relativeError = sums.relativeError
            let k = lin.inFeatures, wq = current[0].uniform
            let dx = Double(Self.largestStep(current[1], inputMax: maxima[0]))
            let meanAbsInput = sums.inputAbsSum / Double(max(1, sums.rows))
            if settings.biasCorrection { bias = (0..<lin.outFeatures).map { j in
                let dw = Double(wq.rowScale(j))
                let wAbs = (0..<k).reduce(0.0) { $0 + Double(abs(lin.weight.data[j * k + $1])) }
                let bound = 0.5 * dw * meanAbsInput + 0.5 * dx * wAbs + 0.25 * dw * dx * Double(k)
                return Float(Double(lin.bias?.data[j] ?? 0) - min(max(sums.mean(j), -bound), bound))
            } }
        }
        return OpDecision(op: op, quantizers: current, bias: bias, relativeError: relativeError)
    }

    /// The candidates around a base quantizer: the recipe's multipliers, or shifts for twin softmax.
    func candidates(_ base: OperandQuant, settings: SearchSettings) -> CandidateSet {
        if case let .twin(t) = base, t[0].kind == .softmax {
            return CandidateSet(base: base, multipliers: [], shifts: Array(settings.twinSoftmaxShifts))
        }
        return CandidateSet(base: base, multipliers: settings.multipliers)
    }

    /// The coarsest step of an activation quantizer (Δ2 for twin; for per-token, the step of
    /// a row reaching the calibration maximum `inputMax`).
    static func largestStep(_ q: OperandQuant, inputMax: Float) -> Float {
        switch q {
        case let .uniform(t): return t.scales.max() ?? 0
        case let .twin(t): return t.map(\.delta2).max() ?? 0
        case let .perToken(s): return inputMax / Float(s.qmax)
        }
    }

    func isMatmul(_ op: String) -> Bool { op.hasSuffix(".matmul1") || op.hasSuffix(".matmul2") }

    func linear(_ op: String) -> Linear? { model.linearOps.first { $0.name == op }?.op as? Linear }

    /// Δ0 = max|x| / (qmax + ½) (ALGORITHMS.md §3) for both operands, and their scoring groups.
    func initialQuantizers(_ op: String, maxima: [Float], settings: SearchSettings) -> (bases: [OperandQuant], groups: [Int]) {
        func step(_ m: Float, _ s: QuantScheme) -> Float { m > 0 && m.isFinite ? m / (Float(s.qmax) + 0.5) : 1 }
        if isMatmul(op) {
            let heads = model.attentionGeometry(String(op.dropLast(".matmul1".count)))!.heads
            let isQK = op.hasSuffix(".matmul1")
            let aScheme = isQK ? settings.activationScheme : settings.probsScheme
            let a: OperandQuant
            if !isQK && settings.twin {
                // R2 covers [0, 1) with Δ2 = 1/2^(k−1); the shift (Δ1 = Δ2/2^shift) is searched.
                let bits = settings.activationScheme.bits
                let d2 = Float(sign: .plus, exponent: -(bits - 1), significand: 1)
                a = .twin((0..<heads).map { _ in TwinCandidates.softmax(delta2: d2, bits: bits, shift: settings.twinSoftmaxShifts.lowerBound) })
            } else {
                a = .uniform(TensorQuant(scheme: aScheme, granularity: .perHead, scales: maxima[0..<heads].map { step($0, aScheme) }))
            }
            let b = TensorQuant(scheme: settings.activationScheme, granularity: .perHead,
                                scales: maxima[heads..<2 * heads].map { step($0, settings.activationScheme) })
            return ([a, .uniform(b)], [heads, heads])
        }
        let lin = linear(op)!
        let n = lin.outFeatures, k = lin.inFeatures, ws = settings.weightScheme
        let rowMax = (0..<n).map { Ops.maxAbs(lin.weight.data + $0 * k, cols: k) }
        let groups: Int
        let weight: TensorQuant
        if settings.weightGranularity == .perChannel {
            groups = n
            weight = TensorQuant(scheme: ws, granularity: .perChannel, scales: rowMax.map { step($0, ws) })
        } else if op.hasSuffix(".attn.qkv") {
            // One scale each for q, k and v (the official code's default), stored per channel.
            groups = 3
            let per = n / 3
            let partMax = (0..<3).map { p in rowMax[(p * per)..<((p + 1) * per)].max() ?? 0 }
            weight = TensorQuant(scheme: ws, granularity: .perChannel, scales: (0..<n).map { step(partMax[$0 / per], ws) })
        } else {
            groups = 1
            weight = TensorQuant(scheme: ws, granularity: .perTensor, scales: [step(rowMax.max() ?? 0, ws)])
        }
        let xs = settings.activationScheme
        let input: OperandQuant
        if settings.activationGranularity == .perToken {
            input = .perToken(xs)
        } else if settings.twin && op.hasSuffix(".mlp.fc2") {
            // Post-GELU: R2 (non-negative) from the max, R1 (negative) follows it.
            input = .twin([TwinCandidates.gelu(delta2: step(maxima[0], xs), bits: xs.bits)])
        } else {
            input = .uniform(TensorQuant(scheme: xs, granularity: .perTensor, scales: [step(maxima[0], xs)]))
        }
        return ([.uniform(weight), input], [groups, 1])
    }

    /// The quantizer whose group g uses candidate winners[g]. Scales are laid out per row
    /// (or per head), `groups` consecutive equal blocks of them.
    static func choose(_ set: CandidateSet, winners: [Int], groups: Int) -> OperandQuant {
        switch set.base {
        case var .uniform(q):
            let per = q.scales.count / groups
            for i in q.scales.indices { q.scales[i] *= set.multipliers[winners[groups == 1 ? 0 : i / per]] }
            return .uniform(q)
        case let .twin(t):
            // One twin quantizer per group.
            return .twin(t.indices.map { g in
                guard case let .twin(c) = set.quantizer(winners[g]) else { preconditionFailure() }
                return c[g]
            })
        case .perToken:
            return set.base
        }
    }
}
