import VitqModels
import VitqTensor

/// ViT/DeiT (pre-norm): blocks.i.norm1 → blocks.i.attn.qkv, blocks.i.norm2 → blocks.i.mlp.fc1
/// and norm → head (without a distillation head, which shares the norm) fold into the
/// LayerNorms; the GELU outputs before blocks.i.mlp.fc2 are divided by the block's
/// ``ViTBlock/hiddenMultiplier`` (stored in the quantized file).
extension VisionTransformer: ChannelSmoothable {
    public func smoothedOps(layerNorm: Bool, activation: Bool) -> [String] {
        var ops: [String] = []
        for i in 0..<config.depth {
            if layerNorm { ops += ["blocks.\(i).attn.qkv", "blocks.\(i).mlp.fc1"] }
            if activation { ops.append("blocks.\(i).mlp.fc2") }
        }
        if layerNorm && headDist == nil { ops.append("head") }
        return ops
    }

    public func smoothed(ranges: [String: [Float]], alpha: Float, activationAlpha: Float, center: Bool) -> Self {
        func smooth(_ norm: LayerNorm, _ op: any LinearOp, _ name: String) -> (LayerNorm, any LinearOp) {
            ChannelSmoothing.smoothing(norm, op, range: ranges[name], alpha: alpha, center: center)
        }
        let nb = blocks.enumerated().map { i, b -> ViTBlock in
            let (n1, qkv) = smooth(b.norm1, b.qkv, "blocks.\(i).attn.qkv")
            let (n2, fc1) = smooth(b.norm2, b.fc1, "blocks.\(i).mlp.fc1")
            let gelu = b.hiddenMultiplier == nil
                ? ChannelSmoothing.geluMultiplier(b.fc2, range: ranges["blocks.\(i).mlp.fc2"], alpha: activationAlpha) : nil
            return ViTBlock(norm1: n1, qkv: qkv, attention: b.attention, proj: b.proj, norm2: n2, fc1: fc1,
                            fc2: gelu?.op ?? b.fc2, hiddenMultiplier: gelu?.multiplier ?? b.hiddenMultiplier)
        }
        let (n, h) = headDist == nil ? smooth(norm, head, "head") : (norm, head)
        return Self(spec: spec, patchEmbed: patchEmbed, clsToken: clsToken, distToken: distToken,
                    posEmbed: posEmbed, blocks: nb, norm: n, head: h, headDist: headDist)
    }
}
