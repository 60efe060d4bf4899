import Foundation
import VitqModels

/// ViT and DeiT (distilled too) as an ONNX graph (``ONNXExport``): patch embedding, class (and
/// distillation) tokens, pre-norm blocks, the head(s) on the first token(s).
struct ViTExport {
    let vit: VisionTransformer
    let ops: ExportOps
    var b: GraphBuilder { ops.b }

    func build() throws {
        let c = vit.config
        let e = c.embedDim
        let patches = ops.imagePatches(channels: c.inChans, imageSize: c.imgSize, patchSize: c.patchSize)
        let embedded = try ops.product(patches, "patch_embed.proj", vit.patchEmbed)
        // [cls, (dist), patches] + pos_embed.
        let batch = b.op("Slice", [b.op("Shape", ["pixel_values"], "input_shape"), b.int64s("zero", [0]), b.int64s("one", [1])], "batch_size")
        let tokenShape = b.op("Concat", [batch, b.int64s("token_tail", [1, Int64(e)])], "token_shape", [Attr.int("axis", 0)])
        var parts = [b.op("Expand", [b.floats("cls_token", vit.clsToken.array, dims: [1, 1, e]), tokenShape], "cls")]
        if let d = vit.distToken { parts.append(b.op("Expand", [b.floats("dist_token", d.array, dims: [1, 1, e]), tokenShape], "dist")) }
        let tokens = b.op("Concat", parts + [embedded], "tokens", [Attr.int("axis", 1)])
        var x = b.op("Add", [tokens, b.floats("pos_embed", vit.posEmbed.array, dims: [1, c.tokens, e])], "embed")
        for i in vit.blocks.indices { x = try block(i, x) }
        x = ops.layerNorm(x, vit.norm, "norm")
        let first = b.op("Gather", [x, b.int64s("token0", [0], dims: [])], "head_input", [Attr.int("axis", 1)])
        var logits = try ops.product(first, "head", vit.head)
        if let hd = vit.headDist {
            let second = b.op("Gather", [x, b.int64s("token1", [1], dims: [])], "head_dist_input", [Attr.int("axis", 1)])
            let dist = try ops.product(second, "head_dist", hd)
            logits = b.op("Mul", [b.op("Add", [logits, dist], "heads_sum"), b.scalar("half", 0.5)], "logits_mean")
        }
        _ = b.op("Identity", [logits], "logits")
        b.output("logits", .float, [.symbol("batch"), .size(c.numClasses)])
    }

    func block(_ i: Int, _ x: String) throws -> String {
        let c = vit.config, blk = vit.blocks[i], p = "blocks.\(i)"
        let h = ops.layerNorm(x, blk.norm1, p + ".norm1")
        let qkv = try ops.product(h, p + ".attn.qkv", blk.qkv)
        // timm's reshape(B, N, 3, heads, head_dim).permute(2, 0, 3, 1, 4).
        let split = b.op("Transpose", [b.op("Reshape", [qkv, b.int64s(p + ".qkv_shape", [0, 0, 3, Int64(c.numHeads), Int64(c.headDim)])], p + ".qkv_heads")],
                         p + ".qkv_split", [Attr.ints("perm", [2, 0, 3, 1, 4])])
        func part(_ k: Int, _ n: String) -> String { b.op("Gather", [split, b.int64s("\(p).\(n)_index", [Int64(k)], dims: [])], "\(p).attn.\(n)", [Attr.int("axis", 0)]) }
        let ctx = try ops.attend(part(0, "q"), part(1, "k"), part(2, "v"), heads: c.numHeads, headDim: c.headDim, block: p + ".attn")
        let merged = b.op("Reshape", [b.op("Transpose", [ctx], p + ".ctx_tokens", [Attr.ints("perm", [0, 2, 1, 3])]), b.int64s(p + ".ctx_shape", [0, 0, Int64(c.embedDim)])], p + ".attn.proj.input")
        let x1 = b.op("Add", [x, try ops.product(merged, p + ".attn.proj", blk.proj)], p + ".attn_residual")
        let h2 = ops.layerNorm(x1, blk.norm2, p + ".norm2")
        var hidden = ops.gelu(try ops.product(h2, p + ".mlp.fc1", blk.fc1), p + ".mlp.act")
        if let m = blk.hiddenMultiplier { hidden = b.op("Mul", [hidden, b.floats(p + ".mlp.fc2.input_multiplier", m.array)], p + ".mlp.fc2.input") }
        return b.op("Add", [x1, try ops.product(hidden, p + ".mlp.fc2", blk.fc2)], p)
    }
}
