import VitqTensor

/// The activations a float forward pass keeps for the backward pass.
final class ViTTrace {
    /// One block's saved tensors, all [B·T, ·].
    struct Block {
        let x0: Tensor   // block input = norm1 input [B·T, E]
        let qkv: Tensor  // qkv output [B·T, 3E]; the probabilities are recomputed from it
        let x1: Tensor   // after the attention residual = norm2 input [B·T, E]
        let fc1: Tensor  // fc1 output, pre-GELU [B·T, hidden]
    }
    var blocks: [Block] = []
    /// Input of the final norm [B·T, E].
    var preNorm: Tensor?
}

/// The fp32 layers of one block, as the backward pass needs them.
struct FloatBlock {
    let norm1: LayerNorm, qkv: Linear, proj: Linear, norm2: LayerNorm, fc1: Linear, fc2: Linear
    let hiddenMultiplier: Tensor?

    init(_ b: ViTBlock, index i: Int) {
        func linear(_ op: any LinearOp, _ name: String) -> Linear {
            guard let l = op as? Linear else { preconditionFailure("blocks.\(i).\(name) is \(type(of: op)), not a float Linear") }
            return l
        }
        precondition(b.attention is FloatAttention, "blocks.\(i).attn is \(type(of: b.attention)), not FloatAttention")
        norm1 = b.norm1; norm2 = b.norm2; hiddenMultiplier = b.hiddenMultiplier
        qkv = linear(b.qkv, "attn.qkv"); proj = linear(b.proj, "attn.proj")
        fc1 = linear(b.fc1, "mlp.fc1"); fc2 = linear(b.fc2, "mlp.fc2")
    }
}

extension VisionTransformer {
    /// The float layers of every block; a precondition failure names the first op that is not float.
    func floatBlocks() -> [FloatBlock] {
        precondition(patchEmbed is Linear, "patch_embed.proj is \(type(of: patchEmbed)), not a float Linear")
        precondition(head is Linear && (headDist.map { $0 is Linear } ?? true), "the head is not a float Linear")
        return blocks.enumerated().map { FloatBlock($1, index: $0) }
    }
}
