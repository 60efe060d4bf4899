import VitqTensor

/// What the backward pass needs of one forward (kept only when asked).
final class SwinTrace {
    /// patch_embed.proj output (before patch_embed.norm).
    var patch: Tensor?
    var merges: [Int: SwinMergeTrace] = [:]
    /// Keyed by [stage, block].
    var blocks: [[Int]: SwinBlockTrace] = [:]
    /// The input of the final norm.
    var final: Tensor?
}

final class SwinMergeTrace {
    /// The concatenated 2×2 neighbours, before the merge's LayerNorm.
    var concatenated: Tensor?
}

final class SwinBlockTrace {
    /// The block input (norm1's input), the window-ordered qkv output, the probabilities
    /// [B·nW, heads, n, n], the window-ordered context, norm2's input and fc1's output (pre-GELU).
    var input: Tensor?, qkv: Tensor?, probs: Tensor?, ctx: Tensor?, mid: Tensor?, fc1: Tensor?
    /// The grid row each window row was gathered from (``SwinWindows/sourceRows``).
    var source: [Int] = []
}
