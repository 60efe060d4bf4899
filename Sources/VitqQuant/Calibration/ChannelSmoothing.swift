import Foundation
import VitqModels
import VitqTensor

/// SmoothQuant-style channel smoothing (Xiao et al. 2023; RepQ-ViT's reparameterisation of
/// post-LayerNorm activations): a linear op computes the same function with its input channel c
/// divided by s_c and its weight column c multiplied by s_c. With
/// s_c = max|X_c|^α / max|W_c|^(1−α), outlier channels of the activation hand part of their range
/// to the weights, so a per-tensor activation scale fits every channel better. The model stays
/// a float model; quantization then runs on it unchanged.
///
/// - LayerNorm outputs (`smooth_alpha`): blocks.i.norm1 → blocks.i.attn.qkv, blocks.i.norm2 →
///   blocks.i.mlp.fc1, and norm → head (ViT without a distillation head). The division folds
///   into the LayerNorm's γ and β. With `smooth_center` (RepQ-ViT's per-channel zero points,
///   folded), channel c is first shifted by its centre o_c = (min_c + max_c)/2 over the
///   calibration images, folded into β, and the op's bias gains W·o; s_c then balances the
///   half-range (max_c − min_c)/2 instead of max|X_c|.
/// - GELU outputs (`gelu_smooth_alpha`): blocks.i.mlp.fc2. GELU does not commute with a scale, so
///   the division stays an op of its own, the block's ``ViTBlock/hiddenMultiplier`` m_c = 1/s_c,
///   applied in float before fc2's input is quantized (and stored in the quantized file). The
///   factors are divided by their minimum, so m_c ≤ 1: no channel's GELU minimum (−0.17) grows,
///   and twin quantization's negative range still covers every channel.
public enum ChannelSmoothing {
    /// The linear ops whose inputs are smoothed: after LayerNorms when `layerNorm`, after GELUs when `gelu`.
    public static func ops(_ model: VisionTransformer, layerNorm: Bool, gelu: Bool) -> [String] {
        var ops: [String] = []
        for i in 0..<model.config.depth {
            if layerNorm { ops += ["blocks.\(i).attn.qkv", "blocks.\(i).mlp.fc1"] }
            if gelu { ops.append("blocks.\(i).mlp.fc2") }
        }
        if layerNorm && model.headDist == nil { ops.append("head") }
        return ops
    }

    /// The per-channel range of each of `ops`' input over `images`, taken in batches of
    /// `batch`: for an op with k input channels, k minima followed by k maxima (the JOB's
    /// `smoothing` entry).
    public static func inputRanges(_ model: VisionTransformer, ops: [String], images: Range<Int>, batch: Int,
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

    /// `model` with the smoothed ops' inputs divided by their factors (LayerNorm outputs with
    /// strength `alpha`, folded into the LayerNorm, and first centred when `center`; GELU
    /// outputs with `geluAlpha`, as the block's hidden multiplier) and their weight columns
    /// multiplied by them. `ranges` are ``inputRanges(_:ops:images:batch:load:)``'s. Ops without
    /// a range, or with a strength of 0, are unchanged. Other tensors are shared, not copied.
    public static func apply(_ model: VisionTransformer, ranges: [String: [Float]], alpha: Float,
                             geluAlpha: Float = 0, center: Bool = false) -> VisionTransformer {
        func smooth(_ norm: LayerNorm, _ op: any LinearOp, _ name: String) -> (LayerNorm, any LinearOp) {
            guard alpha > 0, let lin = op as? Linear, let range = ranges[name], range.count == 2 * lin.inFeatures else { return (norm, op) }
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
        func smoothGELU(_ op: any LinearOp, _ multiplier: Tensor?, _ name: String) -> (any LinearOp, Tensor?) {
            guard geluAlpha > 0, multiplier == nil, let lin = op as? Linear, let range = ranges[name], range.count == 2 * lin.inFeatures
            else { return (op, multiplier) }
            let raw = factors(lin, xmax: maxAbs(range), alpha: geluAlpha)
            let least = raw.min() ?? 1
            let s = raw.map { $0 / least }
            return (scalingColumns(lin, by: s, bias: lin.bias), Tensor(shape: [s.count], values: s.map { 1 / $0 }))
        }
        let blocks = model.blocks.enumerated().map { i, b -> ViTBlock in
            let (n1, qkv) = smooth(b.norm1, b.qkv, "blocks.\(i).attn.qkv")
            let (n2, fc1) = smooth(b.norm2, b.fc1, "blocks.\(i).mlp.fc1")
            let (fc2, m) = smoothGELU(b.fc2, b.hiddenMultiplier, "blocks.\(i).mlp.fc2")
            return ViTBlock(norm1: n1, qkv: qkv, attention: b.attention, proj: b.proj, norm2: n2, fc1: fc1, fc2: fc2, hiddenMultiplier: m)
        }
        let (norm, head) = model.headDist == nil ? smooth(model.norm, model.head, "head") : (model.norm, model.head)
        return VisionTransformer(spec: model.spec, patchEmbed: model.patchEmbed, clsToken: model.clsToken, distToken: model.distToken,
                                 posEmbed: model.posEmbed, blocks: blocks, norm: norm, head: head, headDist: model.headDist)
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
