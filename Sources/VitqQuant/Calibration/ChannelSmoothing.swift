import Foundation
import VitqModels
import VitqTensor

/// A float model whose linear-op inputs ``ChannelSmoothing`` can rescale channel by channel
/// without changing the function it computes.
public protocol ChannelSmoothable: SearchableModel {
    /// The linear ops whose inputs are smoothed: those fed only by a LayerNorm when `layerNorm`
    /// (`smooth_alpha`), and those fed by the MLP's activation when `activation` (`gelu_smooth_alpha`).
    func smoothedOps(layerNorm: Bool, activation: Bool) -> [String]
    /// This model with ``smoothedOps(layerNorm:activation:)``'s inputs divided by their factors
    /// (LayerNorm outputs with strength `alpha`, first centred when `center`; activation
    /// outputs with `activationAlpha`) and the ops' weight columns multiplied by them. `ranges`
    /// are ``ChannelSmoothing/inputRanges(_:ops:images:batch:load:)``'s. Ops without a range,
    /// or with a strength of 0, are unchanged. Other tensors are shared, not copied.
    func smoothed(ranges: [String: [Float]], alpha: Float, activationAlpha: Float, center: Bool) -> Self
}

/// SmoothQuant-style channel smoothing (Xiao et al. 2023; RepQ-ViT's reparameterisation of
/// post-LayerNorm activations): a linear op computes the same function with its input channel c
/// divided by s_c and its weight column c multiplied by s_c. With
/// s_c = max|X_c|^α / max|W_c|^(1−α), outlier channels of the activation hand part of their range
/// to the weights, so a per-tensor activation scale fits every channel better. The model stays
/// a float model; quantization then runs on it unchanged. Each family says where the division
/// can go (``ChannelSmoothable``); these are the shared pieces.
///
/// - LayerNorm outputs (``smoothing(_:_:range:alpha:center:)``): the division folds into the
///   LayerNorm's γ and β, which is exact only when the LayerNorm feeds nothing but the op. With
///   `smooth_center` (RepQ-ViT's per-channel zero points, folded), channel c is first shifted by
///   its centre o_c = (min_c + max_c)/2 over the calibration images, folded into β, and the op's
///   bias gains W·o; s_c then balances the half-range (max_c − min_c)/2 instead of max|X_c|.
/// - GELU outputs (``geluMultiplier(_:range:alpha:)``): GELU does not commute with a scale, so
///   the division stays an op of its own, a multiplier m_c = 1/s_c applied in float before the
///   op's input is quantized. The factors are divided by their minimum, so m_c ≤ 1: no channel's
///   GELU minimum (−0.17) grows, and twin quantization's negative range still covers every channel.
/// - ReLU outputs (``reluFold(_:_:range:alpha:)``): ReLU commutes with a positive scale, so the
///   division folds into the rows of the linear op before the ReLU.
public enum ChannelSmoothing {
    /// The per-channel range of each of `ops`' input over `images`, taken in batches of
    /// `batch`: for an op with k input channels, k minima followed by k maxima (the JOB's
    /// `smoothing` entry).
    public static func inputRanges(_ model: any ImageClassifier, ops: [String], images: Range<Int>, batch: Int,
                                   load: (Range<Int>) throws -> Tensor) throws -> [String: [Float]] {
        let observer = ChannelRangeObserver(names: Set(ops.map { $0 + ".input" }))
        var lo = images.lowerBound
        while lo < images.upperBound {
            let hi = min(lo + batch, images.upperBound)
            _ = model.forward(try load(lo..<hi), observer: observer)
            lo = hi
        }
        return Dictionary(uniqueKeysWithValues: observer.ranges.map { (String($0.key.dropLast(".input".count)), $0.value.min + $0.value.max) })
    }

    /// The LayerNorm `norm` and the op `op` it alone feeds, with `op`'s input smoothed at
    /// strength `alpha` (and centred when `center`); unchanged without a range of the op's width.
    static func smoothing(_ norm: LayerNorm, _ op: any LinearOp, range: [Float]?, alpha: Float, center: Bool) -> (LayerNorm, any LinearOp) {
        guard alpha > 0, let lin = op as? Linear, let range, range.count == 2 * lin.inFeatures else { return (norm, op) }
        let k = lin.inFeatures
        let centre = (0..<k).map { center ? (range[$0] + range[k + $0]) / 2 : 0 }
        let spread = center ? (0..<k).map { (range[k + $0] - range[$0]) / 2 } : maxAbs(range)
        let s = factors(lin, xmax: spread, alpha: alpha)
        let gamma = Tensor(shape: [k], values: (0..<k).map { norm.weight.data[$0] / s[$0] })
        let beta = Tensor(shape: [k], values: (0..<k).map { (norm.bias.data[$0] - centre[$0]) / s[$0] })
        guard center else { return (LayerNorm(weight: gamma, bias: beta, eps: norm.eps), scalingColumns(lin, by: s, bias: lin.bias)) }
        // y = W·x + b = (W·diag(s))·((x − o)/s) + (b + W·o).
        let w = lin.weight.data
        let bias = (0..<lin.outFeatures).map { j in
            Float((0..<k).reduce(Double(lin.bias?.data[j] ?? 0)) { $0 + Double(w[j * k + $1]) * Double(centre[$1]) })
        }
        return (LayerNorm(weight: gamma, bias: beta, eps: norm.eps),
                scalingColumns(lin, by: s, bias: Tensor(shape: [lin.outFeatures], values: bias)))
    }

    /// The op `op` fed by a GELU, with its input smoothed at strength `alpha`, and the
    /// multiplier 1/s (at most 1) that divides the GELU output; nil when unchanged.
    static func geluMultiplier(_ op: any LinearOp, range: [Float]?, alpha: Float) -> (op: any LinearOp, multiplier: Tensor)? {
        guard alpha > 0, let lin = op as? Linear, let range, range.count == 2 * lin.inFeatures else { return nil }
        let raw = factors(lin, xmax: maxAbs(range), alpha: alpha)
        let least = raw.min() ?? 1
        let s = raw.map { $0 / least }
        return (scalingColumns(lin, by: s, bias: lin.bias), Tensor(shape: [s.count], values: s.map { 1 / $0 }))
    }

    /// `before` → ReLU → `after`, with `after`'s input smoothed at strength `alpha`: row c of
    /// `before` (weight and bias) divided by s_c, column c of `after` multiplied by it
    /// (relu(x)/s = relu(x/s) for s > 0); unchanged without a range of `after`'s width.
    static func reluFold(_ before: any LinearOp, _ after: any LinearOp, range: [Float]?, alpha: Float) -> (any LinearOp, any LinearOp) {
        guard alpha > 0, let first = before as? Linear, let lin = after as? Linear, let range,
              range.count == 2 * lin.inFeatures, first.outFeatures == lin.inFeatures else { return (before, after) }
        let s = factors(lin, xmax: maxAbs(range), alpha: alpha)
        let k = first.inFeatures
        let w = Tensor(zeros: first.weight.shape)
        for c in 0..<first.outFeatures { for j in 0..<k { w.data[c * k + j] = first.weight.data[c * k + j] / s[c] } }
        let bias = first.bias.map { b in Tensor(shape: b.shape, values: (0..<b.count).map { b.data[$0] / s[$0] }) }
        return (Linear(weight: w, bias: bias), scalingColumns(lin, by: s, bias: lin.bias))
    }

    /// max |x_c| of a range entry (k minima, then k maxima).
    static func maxAbs(_ range: [Float]) -> [Float] {
        let k = range.count / 2
        return (0..<k).map { max(-range[$0], range[k + $0]) }
    }

    /// The smoothing factors s_c of `op` for input maxima `xmax`.
    static func factors(_ lin: Linear, xmax: [Float], alpha: Float) -> [Float] {
        let n = lin.outFeatures, k = lin.inFeatures, w = lin.weight.data
        return (0..<k).map { c in
            var wmax: Float = 0
            for j in 0..<n { wmax = max(wmax, abs(w[j * k + c])) }
            guard xmax[c] > 0, wmax > 0 else { return 1 }
            let s = Float(pow(Double(xmax[c]), Double(alpha)) / pow(Double(wmax), Double(1 - alpha)))
            return s.isFinite && s > 0 ? s : 1
        }
    }

    /// `lin`'s weight with column c multiplied by s[c], and `bias`.
    static func scalingColumns(_ lin: Linear, by s: [Float], bias: Tensor?) -> Linear {
        let k = lin.inFeatures
        let w = Tensor(zeros: lin.weight.shape)
        for j in 0..<lin.outFeatures { for c in 0..<k { w.data[j * k + c] = lin.weight.data[j * k + c] * s[c] } }
        return Linear(weight: w, bias: bias)
    }
}

/// Running per-channel minimum and maximum (over the last dimension) of the tapped activations.
private final class ChannelRangeObserver: ForwardObserver {
    let names: Set<String>
    var ranges: [String: (min: [Float], max: [Float])] = [:]
    init(names: Set<String>) { self.names = names }
    func wants(_ name: String) -> Bool { names.contains(name) }
    func observe(_ name: String, _ values: UnsafeBufferPointer<Float>, shape: [Int]) {
        let c = shape.last!
        var r = ranges[name] ?? ([Float](repeating: .infinity, count: c), [Float](repeating: -.infinity, count: c))
        for i in 0..<values.count {
            r.min[i % c] = min(r.min[i % c], values[i])
            r.max[i % c] = max(r.max[i % c], values[i])
        }
        ranges[name] = r
    }
}
