import Foundation
import VitqModels

/// Swin as an ONNX graph (``ONNXExport``), timm's layout: tokens [batch, R·R, C] in grid order;
/// each block's cyclic shift and window partition as one `Gather` of rows (and its inverse back),
/// attention per window over [batch·windows, heads, n, head_dim] with the relative position
/// bias and shift mask added to the scores; patch merging as a reshape of 2×2 neighbours; the
/// head on the token mean.
struct SwinExport {
    let swin: SwinTransformer
    let ops: ExportOps
    var b: GraphBuilder { ops.b }

    func build() throws {
        let c = swin.config
        let patches = ops.imagePatches(channels: c.inChans, imageSize: c.imgSize, patchSize: c.patchSize)
        var x = ops.layerNorm(try ops.product(patches, "patch_embed.proj", swin.patchEmbed), swin.patchNorm, "patch_embed.norm")
        for s in 0..<c.stages {
            if let m = swin.merges[s] { x = try merge(x, m, stage: s) }
            for i in swin.stages[s].indices { x = try block(x, stage: s, index: i) }
        }
        x = ops.layerNorm(x, swin.norm, "norm")
        let logits = try ops.product(ops.reduceMeanAxis1(x, "head.fc.input"), "head.fc", swin.head)
        _ = b.op("Identity", [logits], "logits")
        b.output("logits", .float, [.symbol("batch"), .size(c.numClasses)])
    }

    /// Patch merging: row (y, x) of the half grid holds x[2y,2x], x[2y+1,2x], x[2y,2x+1],
    /// x[2y+1,2x+1], i.e. (dx, dy, C) with dy fastest after C; then its norm and reduction.
    func merge(_ x: String, _ m: SwinMerge, stage s: Int) throws -> String {
        let c = swin.config, h = Int64(c.resolution(s)), d = Int64(c.dim(s - 1)), p = "layers.\(s).downsample"
        let grid = b.op("Reshape", [x, b.int64s(p + ".grid", [-1, h, 2, h, 2, d])], p + ".grid_view")
        let moved = b.op("Transpose", [grid], p + ".neighbours", [Attr.ints("perm", [0, 1, 3, 4, 2, 5])])
        let cat = b.op("Reshape", [moved, b.int64s(p + ".shape", [-1, h * h, 4 * d])], p + ".concatenated")
        return try ops.product(ops.layerNorm(cat, m.norm, p + ".norm"), p + ".reduction", m.reduction)
    }

    func block(_ x: String, stage s: Int, index i: Int) throws -> String {
        let c = swin.config, blk = swin.stages[s][i], p = "layers.\(s).blocks.\(i)"
        let d = Int64(c.dim(s)), heads = c.numHeads[s], hd = c.dim(s) / heads, w = c.window(s), n = Int64(w * w)
        let source = swin.windowSourceRows(stage: s, block: i)
        let identity = source == Array(source.indices)
        var inverse = [Int64](repeating: 0, count: source.count)
        for (k, r) in source.enumerated() { inverse[r] = Int64(k) }
        func rows(_ t: String, _ order: [Int64], _ name: String) -> String {
            identity ? t : b.op("Gather", [t, b.int64s(name + "_rows", order)], name, [Attr.int("axis", 1)])
        }
        let windows = rows(ops.layerNorm(x, blk.norm1, p + ".norm1"), source.map(Int64.init), p + ".windows")
        let qkv = try ops.product(windows, p + ".attn.qkv", blk.qkv)
        // Per window: (n, 3, heads, head_dim) → [3, batch·windows, heads, n, head_dim].
        let split = b.op("Transpose", [b.op("Reshape", [qkv, b.int64s(p + ".qkv_shape", [-1, n, 3, Int64(heads), Int64(hd)])], p + ".qkv_heads")],
                         p + ".qkv_split", [Attr.ints("perm", [2, 0, 3, 1, 4])])
        func part(_ k: Int, _ name: String) -> String {
            b.op("Gather", [split, b.int64s("\(p).\(name)_index", [Int64(k)], dims: [])], "\(p).attn.\(name)", [Attr.int("axis", 0)])
        }
        let bias = swin.attentionScoreBias(stage: s, block: i)
        let biasName = b.floats(p + ".attn.score_bias", bias.array, dims: bias.shape)
        let maskedWindows = Int64(bias.shape[0])
        func addBias(_ scores: String) -> String {
            guard maskedWindows > 1 else { return b.op("Add", [scores, biasName], p + ".attn.biased_scores") }
            // [batch·windows, …] as [batch, windows, …], so that each window gets its mask.
            let perWindow = b.op("Reshape", [scores, b.int64s(p + ".attn.window_scores", [-1, maskedWindows, Int64(heads), n, n])], p + ".attn.scores_by_window")
            return b.op("Reshape", [b.op("Add", [perWindow, biasName], p + ".attn.masked_scores"), b.int64s(p + ".attn.scores_shape", [-1, Int64(heads), n, n])],
                        p + ".attn.biased_scores")
        }
        let ctx = try ops.attend(part(0, "q"), part(1, "k"), part(2, "v"), heads: heads, headDim: hd, block: p + ".attn", scoreBias: addBias)
        let merged = b.op("Reshape", [b.op("Transpose", [ctx], p + ".ctx_tokens", [Attr.ints("perm", [0, 2, 1, 3])]),
                                      b.int64s(p + ".ctx_shape", [-1, Int64(source.count), d])], p + ".attn.proj.input")
        let attn = rows(try ops.product(merged, p + ".attn.proj", blk.proj), inverse, p + ".attn.unwindowed")
        let x1 = b.op("Add", [x, attn], p + ".attn_residual")
        let hidden = ops.gelu(try ops.product(ops.layerNorm(x1, blk.norm2, p + ".norm2"), p + ".mlp.fc1", blk.fc1), p + ".mlp.act")
        return b.op("Add", [x1, try ops.product(hidden, p + ".mlp.fc2", blk.fc2)], p)
    }
}
