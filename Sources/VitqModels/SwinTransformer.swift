import Foundation
import VitqData
import VitqFormats
import VitqTensor

/// One Swin block: x += proj(window-attention(norm1(x))) over (shifted) windows;
/// x += fc2(gelu(fc1(norm2(x)))). The products are ``LinearOp`` and ``AttentionKernel`` values,
/// fp32 when loaded from a float file, as in ``ViTBlock``.
public struct SwinBlock: @unchecked Sendable {
    public let norm1: LayerNorm                 // layers.s.blocks.b.norm1
    public let qkv: any LinearOp                // …attn.qkv [3C, C], output laid out (3, heads, head_dim)
    public let attention: any AttentionKernel   // per window and head, with the bias and mask added to the scores
    public let relativePositionBias: Tensor     // …attn.relative_position_bias_table [(2w−1)², heads]
    public let proj: any LinearOp               // …attn.proj [C, C]
    public let norm2: LayerNorm                 // …norm2
    public let fc1: any LinearOp                // …mlp.fc1 [hidden, C]
    public let fc2: any LinearOp                // …mlp.fc2 [C, hidden]

    public init(norm1: LayerNorm, qkv: any LinearOp, attention: any AttentionKernel, relativePositionBias: Tensor,
                proj: any LinearOp, norm2: LayerNorm, fc1: any LinearOp, fc2: any LinearOp) {
        self.norm1 = norm1; self.qkv = qkv; self.attention = attention; self.relativePositionBias = relativePositionBias
        self.proj = proj; self.norm2 = norm2; self.fc1 = fc1; self.fc2 = fc2
    }
}

/// Patch merging at the start of stages 1…3: 2×2 neighbours concatenated, normed, reduced.
public struct SwinMerge: @unchecked Sendable {
    public let norm: LayerNorm                  // layers.s.downsample.norm [4C]
    public let reduction: any LinearOp          // layers.s.downsample.reduction [2C, 4C], no bias
    public init(norm: LayerNorm, reduction: any LinearOp) { self.norm = norm; self.reduction = reduction }
}

/// A timm `SwinTransformer` (Liu et al. 2021) in fp32. Activations are NHWC token grids,
/// rows (image, y, x); taps: `patch_embed` (after its norm), `layers.s` and `norm` (all NHWC), as
/// timm's; every linear op's `<op>.input`; `…attn.qkv` and `…attn.softmax` in window order. The
/// traced forward (stage 1) adds each quantizable op's output under its name: `patch_embed.proj`
/// (before the norm), `layers.s.downsample.reduction`, `…attn.matmul1` (scale·Q·Kᵀ, before the
/// bias and mask), `…attn.matmul2` (head-major [B·nW, heads, n, hd]), `…attn.proj`, `…mlp.fc1`,
/// `…mlp.fc2` and `head.fc`.
public final class SwinTransformer: @unchecked Sendable {
    public let config: SwinConfig
    public let patchEmbed: any LinearOp         // patch_embed.proj as a GEMM over (c, ky, kx) patch rows
    public let patchNorm: LayerNorm             // patch_embed.norm
    public let merges: [SwinMerge?]             // per stage; nil for stage 0
    public let stages: [[SwinBlock]]
    public let norm: LayerNorm                  // norm
    public let head: any LinearOp               // head.fc
    /// The eval transform (mean/std from the file's metadata or its JSON; ImageNet's by default).
    public let preprocess: PreprocessConfig
    /// Each block's expanded relative position bias and shift mask, built once ([stage][block]).
    let scoreBiases: [[SwinScoreBias]]

    /// A model from its parts (a quantized Swin shares the float one's norms and biases).
    public init(config: SwinConfig, preprocess: PreprocessConfig = .imagenet, patchEmbed: any LinearOp, patchNorm: LayerNorm,
                merges: [SwinMerge?], stages: [[SwinBlock]], norm: LayerNorm, head: any LinearOp) {
        self.config = config; self.preprocess = preprocess; self.patchEmbed = patchEmbed; self.patchNorm = patchNorm
        self.merges = merges; self.stages = stages; self.norm = norm; self.head = head
        scoreBiases = SwinScoreBias.build(config, stages)
    }

    /// Loads a timm state dict strictly, with `config`.
    public convenience init(file: TensorFile, config c: SwinConfig, preprocess: PreprocessConfig = .imagenet) throws {
        let l = StrictTensorLoader(file)
        try self.init(loader: l, config: c, preprocess: preprocess) { name, out, inF in
            let bias = name.hasSuffix("downsample.reduction") ? nil : try l.load("\(name).bias", [out])
            let w = try l.load("\(name).weight", c.weightShape(name, out: out, in: inF))
            return Linear(weight: Tensor(shape: [out, inF], values: w.array), bias: bias)
        }
        try l.finish()
    }

    /// Loads the float tensors (norms, relative position bias tables) from `l` and each linear op
    /// from `linear(name, out, in)`; the caller finishes the loader.
    public init(loader l: StrictTensorLoader, config c: SwinConfig, preprocess: PreprocessConfig,
                linear: (String, Int, Int) throws -> any LinearOp) throws {
        try c.validate(source: l.file.path)
        try c.checkSizes(source: l.file.path, fileBytes: l.file.byteCount, tensorCount: l.file.tensors.count)
        config = c
        self.preprocess = preprocess
        let e = c.embedDim, eps = c.layerNormEps
        patchEmbed = try linear("patch_embed.proj", e, c.inChans * c.patchSize * c.patchSize)
        patchNorm = try LayerNorm(l, "patch_embed.norm", dim: e, eps: eps)
        merges = try (0..<c.stages).map { s in
            guard s > 0 else { return nil }
            let d = c.dim(s - 1)
            return SwinMerge(norm: try LayerNorm(l, "layers.\(s).downsample.norm", dim: 4 * d, eps: eps),
                             reduction: try linear("layers.\(s).downsample.reduction", 2 * d, 4 * d))
        }
        stages = try (0..<c.stages).map { s in
            let d = c.dim(s), w = c.window(s), hidden = c.mlpHidden(s)
            return try (0..<c.depths[s]).map { b in
                let pre = "layers.\(s).blocks.\(b)"
                return SwinBlock(norm1: try LayerNorm(l, "\(pre).norm1", dim: d, eps: eps),
                                 qkv: try linear("\(pre).attn.qkv", 3 * d, d),
                                 attention: FloatAttention(),
                                 relativePositionBias: try l.load("\(pre).attn.relative_position_bias_table", [(2 * w - 1) * (2 * w - 1), c.numHeads[s]]),
                                 proj: try linear("\(pre).attn.proj", d, d),
                                 norm2: try LayerNorm(l, "\(pre).norm2", dim: d, eps: eps),
                                 fc1: try linear("\(pre).mlp.fc1", hidden, d),
                                 fc2: try linear("\(pre).mlp.fc2", d, hidden))
            }
        }
        let last = c.dim(c.stages - 1)
        norm = try LayerNorm(l, "norm", dim: last, eps: eps)
        head = try linear("head.fc", c.numClasses, last)
        scoreBiases = SwinScoreBias.build(c, stages)
    }
}

extension SwinTransformer {
    /// Every linear op with its timm name, in forward order.
    public var linearOps: [(name: String, op: any LinearOp)] {
        var ops: [(String, any LinearOp)] = [("patch_embed.proj", patchEmbed)]
        for s in 0..<config.stages {
            if let m = merges[s] { ops.append(("layers.\(s).downsample.reduction", m.reduction)) }
            for (i, b) in stages[s].enumerated() {
                let p = "layers.\(s).blocks.\(i)"
                ops += [("\(p).attn.qkv", b.qkv), ("\(p).attn.proj", b.proj), ("\(p).mlp.fc1", b.fc1), ("\(p).mlp.fc2", b.fc2)]
            }
        }
        ops.append(("head.fc", head))
        return ops
    }

    /// This model with its products replaced: `linear(name, op)` for each linear op and
    /// `attention(name, kernel)` for each block's attention (`layers.s.blocks.b.attn`).
    public func replacing(linear: (String, any LinearOp) -> any LinearOp,
                          attention: (String, any AttentionKernel) -> any AttentionKernel) -> SwinTransformer {
        let newMerges = merges.enumerated().map { s, m in
            m.map { SwinMerge(norm: $0.norm, reduction: linear("layers.\(s).downsample.reduction", $0.reduction)) }
        }
        let newStages = stages.enumerated().map { s, blocks in
            blocks.enumerated().map { i, b -> SwinBlock in
                let p = "layers.\(s).blocks.\(i)"
                return SwinBlock(norm1: b.norm1, qkv: linear("\(p).attn.qkv", b.qkv), attention: attention("\(p).attn", b.attention),
                                 relativePositionBias: b.relativePositionBias, proj: linear("\(p).attn.proj", b.proj), norm2: b.norm2,
                                 fc1: linear("\(p).mlp.fc1", b.fc1), fc2: linear("\(p).mlp.fc2", b.fc2))
            }
        }
        return SwinTransformer(config: config, preprocess: preprocess, patchEmbed: linear("patch_embed.proj", patchEmbed), patchNorm: patchNorm, merges: newMerges,
                               stages: newStages, norm: norm, head: linear("head.fc", head))
    }
}
