import Foundation
import VitqModels
import VitqTensor

/// Method `minmax`: Wu et al.'s calibrators (ALGORITHMS.md §1b) through a ``SearchExecutor``, so
/// the same code runs over the shards in this process and on workers.
///
/// For every op the recipe quantizes: an `extrema` unit gives each operand group's range
/// (max-reduced over shards); for the histogram calibrators a `histogram` unit then counts
/// every group's values in 2048 bins over that agreed range (|x| over [0, max|x|] when
/// symmetric, x over [min, max] when affine), counts the shards add exactly; the threshold (or
/// affine range) comes from ``HistogramThreshold``. Weights are calibrated from the model alone.
/// The decisions have the search's form (``OpDecision``), so the network, the file, the journal
/// and the sensitivity probes treat both methods alike.
public enum RangeCalibration {
    /// Bins of every activation histogram (TensorRT's).
    public static let bins = 2048

    /// The decisions for every op the recipe quantizes.
    public static func decisions(model: any SearchableModel, recipe: Recipe, executor: SearchExecutor) throws -> [String: OpDecision] {
        var out: [String: OpDecision] = [:]
        let linears = Dictionary(model.linearOps.map { ($0.name, $0.op) }, uniquingKeysWith: { a, _ in a })
        for op in SearchCalibration.ops(model: model, recipe: recipe) {
            let recipe = recipe.forOp(op)
            if op.hasSuffix(".matmul1") || op.hasSuffix(".matmul2") {
                let isQK = op.hasSuffix(".matmul1")
                let block = String(op.dropLast(".matmul1".count))
                let heads = model.attentionGeometry(block)!.heads
                let schemes = isQK ? [recipe.activationScheme, recipe.activationScheme] : [recipe.probsScheme, recipe.activationScheme]
                // P is one-sided on its own grid: it stays symmetric (zero point 0) even when affine.
                let affine = [!recipe.activationSymmetric && isQK, !recipe.activationSymmetric]
                let q = try activationQuantizers(op, groups: heads, operands: 2, schemes: schemes, affine: affine, recipe: recipe, executor: executor)
                out[op] = OpDecision(op: op, quantizers: q.map { .uniform($0) }, bias: nil)
            } else {
                guard let lin = linears[op] as? Linear else { continue }
                let input: OperandQuant
                if recipe.activationGranularity == .perToken {
                    input = .perToken(recipe.activationScheme)
                } else {
                    input = .uniform(try activationQuantizers(op, groups: 1, operands: 1, schemes: [recipe.activationScheme],
                                                              affine: [!recipe.activationSymmetric], recipe: recipe, executor: executor)[0])
                }
                out[op] = OpDecision(op: op, quantizers: [.uniform(weightQuant(lin, recipe: recipe)), input], bias: nil)
            }
        }
        return out
    }

    /// The quantizers of `operands` operands of `groups` heads each (a linear op's input: 1 × 1),
    /// per head or per tensor as the recipe's matmul granularity says (inputs: per tensor).
    static func activationQuantizers(_ op: String, groups: Int, operands: Int, schemes: [QuantScheme], affine: [Bool],
                                     recipe: Recipe, executor: SearchExecutor) throws -> [TensorQuant] {
        let ext = try executor.run(.statistics(.extrema(op)), as: \.ranges)
        let total = groups * operands
        guard ext.count == 2 * total else { throw SearchExecutorError(description: "statistics of op \(op): \(ext.count) extrema, expected \(2 * total)") }
        let perHead = groups > 1 && recipe.matmulGranularity == .perHead
        // Per quantizer (a head, or a whole operand): the range its groups span.
        let width = perHead ? 1 : groups
        func span(_ o: Int, _ k: Int) -> (lo: Float, hi: Float) {
            let gs = (o * groups + k * width)..<(o * groups + (k + 1) * width)
            return (-gs.map { ext[$0] }.max()!, gs.map { ext[total + $0] }.max()!)
        }
        let count = perHead ? groups : 1
        var edges: [Float] = []
        for o in 0..<operands { for g in 0..<groups {
            let (lo, hi) = span(o, perHead ? g : 0)
            edges += affine[o] ? [lo, hi] : [0, max(-lo, hi)]
        } }
        var counts: [Double]?
        if recipe.activationCalibrator != .max {
            let absolute = (0..<operands).flatMap { o in [Bool](repeating: !affine[o], count: groups) }
            let task = StatisticsTask(op: op, kind: .histogram, edges: edges, bins: bins, absolute: absolute)
            let c = try executor.run(.statistics(task), as: \.counts)
            guard c.count == total * bins else { throw SearchExecutorError(description: "histogram of op \(op): \(c.count) counts, expected \(total * bins)") }
            counts = c
        }
        return (0..<operands).map { o in
            let scheme = schemes[o]
            var scales: [Float] = [], zeros: [Int32] = []
            for k in 0..<count {
                let first = o * groups + k * width
                var range = (lo: edges[2 * first], hi: edges[2 * first + 1])
                if let counts {
                    var h = [UInt64](repeating: 0, count: bins)
                    for g in first..<(first + width) { for b in 0..<bins { h[b] += UInt64(counts[g * bins + b]) } }
                    range = threshold(ActivationHistogram(lower: range.lo, upper: range.hi, counts: h), scheme: scheme, affine: affine[o], recipe: recipe)
                }
                if affine[o] {
                    let a = scheme.affine(min: range.lo, max: range.hi)
                    scales.append(a.scale); zeros.append(a.zero)
                } else {
                    scales.append(scheme.symmetricScale(maxAbs: range.hi)); zeros.append(0)
                }
            }
            let granularity: Granularity = groups > 1 ? (perHead ? .perHead : .perTensor) : .perTensor
            return TensorQuant(scheme: scheme, granularity: granularity, scales: scales, zeroPoints: zeros)
        }
    }

    /// The range the recipe's calibrator chooses from a histogram: (0, t) when symmetric.
    static func threshold(_ h: ActivationHistogram, scheme: QuantScheme, affine: Bool, recipe: Recipe) -> (lo: Float, hi: Float) {
        let steps = Int(scheme.qmax - scheme.qmin)
        switch (recipe.activationCalibrator, affine) {
        case (.max, true): return (h.lower, h.upper)
        case (.max, false): return (0, h.upper)
        case (.percentile, true): return HistogramThreshold.percentileRange(h, percentile: recipe.percentile)
        case (.percentile, false): return (0, HistogramThreshold.percentile(h, percentile: recipe.percentile))
        case (.entropy, true): return HistogramThreshold.entropyRange(h, quantizedBins: steps + 1)
        case (.entropy, false): return (0, HistogramThreshold.entropy(h, quantizedBins: Int(scheme.qmax) + 1))
        case (.mse, true): return HistogramThreshold.mseRange(h, steps: steps)
        case (.mse, false): return (0, HistogramThreshold.mse(h, levels: Int(scheme.qmax)))
        }
    }

    /// A weight's quantizer: per output channel (or per tensor) from max |w|, or from the
    /// threshold with the least squared error of the weights (`weight_calibrator: mse`).
    public static func weightQuant(_ lin: Linear, recipe: Recipe) -> TensorQuant {
        let ws = recipe.weightScheme, k = lin.inFeatures
        let perChannel = recipe.weightGranularity == .perChannel
        let rows = perChannel ? (0..<lin.outFeatures).map { ($0 * k, k) } : [(0, lin.outFeatures * k)]
        let scales = rows.map { start, count -> Float in
            let p = UnsafePointer(lin.weight.data + start)
            let t = recipe.weightCalibrator == .mse ? HistogramThreshold.mseWeight(UnsafeBufferPointer(start: p, count: count), levels: Int(ws.qmax))
                                                    : Ops.maxAbs(p, cols: count)
            return ws.symmetricScale(maxAbs: t)
        }
        return TensorQuant(scheme: ws, granularity: recipe.weightGranularity, scales: scales)
    }
}
