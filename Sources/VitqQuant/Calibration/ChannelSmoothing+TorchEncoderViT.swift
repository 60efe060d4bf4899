import VitqModels
import VitqTensor

/// `torch.nn.TransformerEncoderLayer` ViTs (post-norm, ReLU): each block's norm1 and norm2 also
/// feed the residual, so only mlp_head.0 → head folds a LayerNorm smoothing; the ReLU outputs
/// before blocks.i.mlp.fc2 fold into blocks.i.mlp.fc1's rows, so the model needs no multiplier.
extension TorchEncoderViT: ChannelSmoothable {
    public func smoothedOps(layerNorm: Bool, activation: Bool) -> [String] {
        (activation ? (0..<spec.depth).map { "blocks.\($0).mlp.fc2" } : []) + (layerNorm ? ["head"] : [])
    }

    public func smoothed(ranges: [String: [Float]], alpha: Float, activationAlpha: Float, center: Bool) -> Self {
        let nb = blocks.enumerated().map { i, b -> TorchEncoderBlock in
            let (fc1, fc2) = ChannelSmoothing.reluFold(b.fc1, b.fc2, range: ranges["blocks.\(i).mlp.fc2"], alpha: activationAlpha)
            return TorchEncoderBlock(qkv: b.qkv, attention: b.attention, proj: b.proj, norm1: b.norm1, fc1: fc1, fc2: fc2, norm2: b.norm2)
        }
        let (n, h) = ChannelSmoothing.smoothing(headNorm, head, range: ranges["head"], alpha: alpha, center: center)
        return Self(spec: spec, patchEmbed: patchEmbed, clsToken: clsToken, posEmbed: posEmbed, blocks: nb, headNorm: n, head: h)
    }
}
