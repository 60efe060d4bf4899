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
    public convenience init(file: SafeTensorsFile, config c: SwinConfig, preprocess: PreprocessConfig = .imagenet) throws {
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

    // MARK: forward

    /// Logits [B, classes] for normalised images [B, C, H, W].
    public func forward(_ images: Tensor, observer: ForwardObserver? = nil) -> Tensor {
        tracedForward(images, observer: observer, hook: nil, keep: false).logits
    }

    /// Reports an activation to the observer: name, values, shape.
    typealias Tap = (String, UnsafePointer<Float>, [Int]) -> Void

    /// A hook that may change an op's output in place (gradient checks); names as the gradient taps' without `.grad`.
    typealias Hook = (String, UnsafeMutablePointer<Float>, [Int]) -> Void

    /// An op's output: offered to the hook (which may change it), then tapped.
    typealias Output = (String, UnsafeMutablePointer<Float>, [Int]) -> Void

    /// The forward pass; with `keep`, the activations the backward pass needs.
    func tracedForward(_ images: Tensor, observer: ForwardObserver?, hook: Hook?, keep: Bool) -> (logits: Tensor, trace: SwinTrace?) {
        let c = config
        precondition(images.shape == [images.shape[0], c.inChans, c.imgSize, c.imgSize], "input shape \(images.shape) does not match the model")
        let b = images.shape[0]
        let tap: Tap = { name, p, shape in
            if let o = observer, o.wants(name) { o.observe(name, UnsafeBufferPointer(start: p, count: shape.reduce(1, *)), shape: shape) }
        }
        /// An op output: the hook may change it, then the observer sees it.
        let output: Output = { name, p, shape in
            hook?(name, p, shape)
            tap(name, p, shape)
        }
        let trace = keep ? SwinTrace() : nil
        var r = c.resolution(0)
        var x = Tensor(zeros: [b * r * r, c.embedDim])
        let cols = Tensor(zeros: [b * r * r, c.inChans * c.patchSize * c.patchSize])
        Ops.im2col(images, patch: c.patchSize, into: cols)
        tap("patch_embed.proj.input", cols.data, cols.shape)
        patchEmbed.forward(cols.data, rows: cols.shape[0], into: x.data)
        hook?("patch_embed", x.data, x.shape)
        tap("patch_embed.proj", x.data, x.shape)
        trace?.patch = keep ? x.copy() : nil
        patchNorm.forward(x.data, rows: x.shape[0], into: x.data)
        tap("patch_embed", x.data, [b, r, r, c.embedDim])
        for s in 0..<c.stages {
            if let m = merges[s] {
                let mt = keep ? SwinMergeTrace() : nil
                x = merge(x, m, batch: b, resolution: r, dim: c.dim(s - 1), name: "layers.\(s).downsample.reduction", tap: tap, output: output, trace: mt)
                if let mt { trace?.merges[s] = mt }
                r /= 2
            }
            for (i, blk) in stages[s].enumerated() {
                let bt = keep ? SwinBlockTrace() : nil
                block(blk, scoreBias: scoreBiases[s][i], x: x, batch: b, resolution: r, dim: c.dim(s), heads: c.numHeads[s], window: c.window(s),
                      shift: c.shift(s, block: i), name: "layers.\(s).blocks.\(i)", observing: observer != nil, tap: tap, output: output,
                      traced: hook != nil || bt != nil, trace: bt)
                if let bt { trace?.blocks[[s, i]] = bt }
            }
            tap("layers.\(s)", x.data, [b, r, r, c.dim(s)])
        }
        let d = c.dim(c.stages - 1)
        trace?.final = keep ? x.copy() : nil
        norm.forward(x.data, rows: x.shape[0], into: x.data)
        tap("norm", x.data, [b, r, r, d])
        // Global average pool over the token grid, then the head.
        let pooled = Tensor(zeros: [b, d])
        for i in 0..<b {
            for t in 0..<(r * r) { for j in 0..<d { pooled.data[i * d + j] += x.data[(i * r * r + t) * d + j] } }
            for j in 0..<d { pooled.data[i * d + j] /= Float(r * r) }
        }
        tap("head.fc.input", pooled.data, pooled.shape)
        let logits = Tensor(zeros: [b, c.numClasses])
        head.forward(pooled.data, rows: b, into: logits.data)
        output("head.fc", logits.data, logits.shape)
        return (logits, trace)
    }

    /// Patch merging: rows of the half-resolution grid hold x[2i,2j], x[2i+1,2j], x[2i,2j+1],
    /// x[2i+1,2j+1] (timm's reshape/permute order), then LayerNorm and the reduction.
    func merge(_ x: Tensor, _ m: SwinMerge, batch b: Int, resolution r: Int, dim d: Int,
               name: String, tap: Tap, output: Output, trace: SwinMergeTrace?) -> Tensor {
        let h = r / 2
        let cat = Tensor(zeros: [b * h * h, 4 * d])
        for i in 0..<b { for y in 0..<h { for xx in 0..<h {
            let dst = cat.data + ((i * h + y) * h + xx) * 4 * d
            for (k, (dy, dx)) in [(0, 0), (1, 0), (0, 1), (1, 1)].enumerated() {
                (dst + k * d).update(from: x.data + ((i * r + 2 * y + dy) * r + 2 * xx + dx) * d, count: d)
            }
        } } }
        trace?.concatenated = trace == nil ? nil : cat.copy()
        m.norm.forward(cat.data, rows: cat.shape[0], into: cat.data)
        tap("\(name).input", cat.data, cat.shape)
        let out = Tensor(zeros: [b * h * h, 2 * d])
        m.reduction.forward(cat.data, rows: cat.shape[0], into: out.data)
        output(name, out.data, out.shape)
        return out
    }

    /// One block in place on x [B·R·R, C]. `traced` (stage 1, gradient checks) runs fp32 with every
    /// intermediate in the open; otherwise the block's attention kernel runs.
    func block(_ blk: SwinBlock, scoreBias sbias: SwinScoreBias, x: Tensor, batch b: Int, resolution r: Int, dim d: Int, heads: Int, window w: Int, shift sh: Int,
               name p: String, observing: Bool, tap: Tap, output: Output, traced: Bool, trace: SwinBlockTrace?) {
        let rows = x.shape[0], n = w * w, side = r / w, nW = side * side, hd = d / heads
        trace?.input = trace == nil ? nil : x.copy()
        // norm1, then gather the cyclically shifted windows: window row (image, wy, wx, iy, ix)
        // reads grid position ((wy·w + iy + shift) mod R, (wx·w + ix + shift) mod R).
        // With nothing observed, an op that offers it takes norm1 into its own pass; the rows are
        // gathered first (LayerNorm is per row, so the order of the two does not change a bit).
        let fuse = !traced && !observing
        let source = SwinWindows.sourceRows(batch: b, resolution: r, window: w, shift: sh)
        let win = Tensor(zeros: [rows, d])
        let qkv = Tensor(zeros: [rows, 3 * d])
        if fuse, let fused = blk.qkv as? any NormFusingLinearOp {
            Parallel.forChunks(rows) { chunk in for i in chunk { (win.data + i * d).update(from: x.data + source[i] * d, count: d) } }
            fused.forward(normalizing: win.data, with: blk.norm1, rows: rows, into: qkv.data)
        } else {
            let h = Tensor(zeros: [rows, d])
            blk.norm1.forward(x.data, rows: rows, into: h.data)
            Parallel.forChunks(rows) { chunk in for i in chunk { (win.data + i * d).update(from: h.data + source[i] * d, count: d) } }
            tap("\(p).attn.qkv.input", win.data, win.shape)
            blk.qkv.forward(win.data, rows: rows, into: qkv.data)
        }
        output("\(p).attn.qkv", qkv.data, qkv.shape)
        // Scores S = scale·Q·Kᵀ + bias (+ mask) per (window, head), then P = softmax(S), ctx = P·V.
        let bias = sbias.bias.data, mask = sbias.mask?.data
        // All probabilities are kept for the backward pass and observers; plain inference keeps one window's.
        let probs = Tensor(zeros: !traced && !observing ? [0] : [b * nW, heads, n, n])
        let ctx = Tensor(zeros: [rows, d])
        let scale = 1 / Float(hd).squareRoot()
        /// scores of task (window·heads + head) += bias[head] + mask[window].
        func addBias(_ scores: UnsafeMutablePointer<Float>, task: Int) {
            let bh = bias + (task % heads) * n * n
            for k in 0..<(n * n) { scores[k] += bh[k] }
            if let mask { let mw = mask + (task / heads % nW) * n * n; for k in 0..<(n * n) { scores[k] += mw[k] } }
        }
        if !traced {
            // Inference: the block's attention kernel (fp32, int8 or fake-quant) per window and head,
            // with bias[head] + mask[window] (built once, ``SwinScoreBias``) added to its scores.
            let combined = sbias.combined.data, combinedTasks = sbias.combined.shape[0] * heads
            Parallel.forChunks(b * nW * heads) { range in
                let scratch = blk.attention.makeScratch(tokens: n, headDim: hd)
                let own = observing ? nil : UnsafeMutablePointer<Float>.allocate(capacity: n * n)
                defer { own?.deallocate() }
                for task in range {
                    let bw = task / heads, head = task % heads, base = qkv.data + bw * n * 3 * d + head * hd
                    blk.attention.attend(head: head, q: base, k: base + d, v: base + 2 * d, ld: 3 * d, tokens: n, headDim: hd, scale: scale,
                                         scoreBias: combined + (task % combinedTasks) * n * n, probs: own ?? probs.data + task * n * n, ctx: ctx.data + bw * n * d + head * hd, ldc: d,
                                         scratch: scratch)
                }
            }
            if observing { tap("\(p).attn.softmax", probs.data, probs.shape) }
            finish(blk, x: x, ctx: ctx, source: source, name: p, tap: tap, output: output, fuse: fuse, trace: nil)
            return
        }
        // Traced: fp32, each intermediate in the open. matmul1 is the product scale·Q·Kᵀ, before
        // the bias and mask (what the quantized product computes; its gradient is the same).
        Parallel.forChunks(b * nW * heads) { chunk in for task in chunk {
            let bw = task / heads, head = task % heads
            let base = qkv.data + bw * n * 3 * d + head * hd, sp = probs.data + task * n * n
            Gemm.sgemm(m: n, n: n, k: hd, alpha: scale, a: base, lda: 3 * d, b: base + d, ldb: 3 * d, transB: true, c: sp, ldc: n)
        } }
        output("\(p).attn.matmul1", probs.data, probs.shape)
        Parallel.forChunks(b * nW * heads) { chunk in for task in chunk { addBias(probs.data + task * n * n, task: task) } }
        Parallel.forChunks(b * nW * heads) { chunk in for task in chunk { Ops.softmaxSerial(probs.data + task * n * n, rows: n, n: n) } }
        output("\(p).attn.softmax", probs.data, probs.shape)
        Parallel.forChunks(b * nW * heads) { chunk in for task in chunk {
            let bw = task / heads, head = task % heads
            Gemm.sgemm(m: n, n: hd, k: n, a: probs.data + task * n * n, lda: n, b: qkv.data + bw * n * 3 * d + 2 * d + head * hd,
                       ldb: 3 * d, transB: false, c: ctx.data + bw * n * d + head * hd, ldc: d)
        } }
        // matmul2 is seen head-major, [B·nW, heads, n, hd], as ViT's.
        let hm = Tensor(zeros: [b * nW, heads, n, hd])
        HeadLayout.toHeadMajor(ctx.data, hm.data, batch: b * nW, tokens: n, heads: heads, headDim: hd)
        output("\(p).attn.matmul2", hm.data, hm.shape)
        HeadLayout.fromHeadMajor(hm.data, ctx.data, batch: b * nW, tokens: n, heads: heads, headDim: hd)
        if let trace { trace.source = source; trace.qkv = qkv; trace.probs = probs; trace.ctx = ctx }
        finish(blk, x: x, ctx: ctx, source: source, name: p, tap: tap, output: output, fuse: false, trace: trace)
    }

    /// The rest of a block after attention: proj, the scatter back into x, and the MLP.
    /// With `fuse`, an fc1 that offers it runs norm2, fc1, GELU and fc2 as one fused pair.
    private func finish(_ blk: SwinBlock, x: Tensor, ctx: Tensor, source: [Int], name p: String, tap: Tap, output: Output, fuse: Bool,
                        trace: SwinBlockTrace?) {
        let rows = x.shape[0], d = x.shape[1]
        let attn = Tensor(zeros: [rows, d])
        tap("\(p).attn.proj.input", ctx.data, ctx.shape)
        blk.proj.forward(ctx.data, rows: rows, into: attn.data)
        output("\(p).attn.proj", attn.data, attn.shape)
        // Scatter back (the reverse shift) into the residual stream.
        Parallel.forChunks(rows) { chunk in for i in chunk { Ops.add(x.data + source[i] * d, attn.data + i * d, count: d) } }
        trace?.mid = trace == nil ? nil : x.copy()
        if fuse, let fc1 = blk.fc1 as? any NormFusingLinearOp,
           fc1.forwardMLP(normalizing: x.data, with: blk.norm2, rows: rows, next: blk.fc2, addingInto: x.data) { return }
        let h = Tensor(zeros: [rows, d])
        blk.norm2.forward(x.data, rows: rows, into: h.data)
        tap("\(p).mlp.fc1.input", h.data, h.shape)
        let f = Tensor(zeros: [rows, blk.fc1.outFeatures])
        blk.fc1.forward(h.data, rows: rows, into: f.data)
        output("\(p).mlp.fc1", f.data, f.shape)
        trace?.fc1 = trace == nil ? nil : f.copy()
        Ops.gelu(f.data, f.data, count: f.count)
        output("\(p).mlp.act", f.data, f.shape)
        tap("\(p).mlp.fc2.input", f.data, f.shape)
        blk.fc2.forward(f.data, rows: rows, into: h.data)
        output("\(p).mlp.fc2", h.data, h.shape)
        Ops.add(x.data, h.data, count: x.count)
    }
}

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

/// Window geometry of Swin's attention, built as timm builds it.
enum SwinWindows {
    /// For each window row (image, wy, wx, iy, ix), the grid row it reads (and writes back).
    static func sourceRows(batch b: Int, resolution r: Int, window w: Int, shift sh: Int) -> [Int] {
        let side = r / w
        var rows = [Int](repeating: 0, count: b * r * r)
        var k = 0
        for i in 0..<b { for wy in 0..<side { for wx in 0..<side { for iy in 0..<w { for ix in 0..<w {
            let y = (wy * w + iy + sh) % r, x = (wx * w + ix + sh) % r
            rows[k] = (i * r + y) * r + x
            k += 1
        } } } } }
        return rows
    }

    /// bias[head][i][j] = table[((y_i − y_j + w − 1)(2w − 1) + x_i − x_j + w − 1), head]
    /// (timm's relative_position_index).
    static func relativeBias(_ table: Tensor, window w: Int, heads: Int) -> Tensor {
        let n = w * w
        let t = Tensor(zeros: [heads, n, n]), out = t.data
        for i in 0..<n { for j in 0..<n {
            let idx = (i / w - j / w + w - 1) * (2 * w - 1) + (i % w - j % w + w - 1)
            for h in 0..<heads { out[(h * n + i) * n + j] = table.data[idx * heads + h] }
        } }
        return t
    }

    /// mask[window][i][j]: 0 when tokens i and j came from the same region of the shifted grid,
    /// else −100 (timm's attn_mask). Regions split each axis at R − w and R − shift.
    static func shiftMask(resolution r: Int, window w: Int, shift sh: Int) -> Tensor {
        let side = r / w, n = w * w
        func region(_ v: Int) -> Int { v < r - w ? 0 : v < r - sh ? 1 : 2 }
        let t = Tensor(zeros: [side * side, n, n]), out = t.data
        for wy in 0..<side { for wx in 0..<side {
            let ids = (0..<n).map { region(wy * w + $0 / w) * 3 + region(wx * w + $0 % w) }
            let m = out + (wy * side + wx) * n * n
            for i in 0..<n { for j in 0..<n { m[i * n + j] = ids[i] == ids[j] ? 0 : -100 } }
        } }
        return t
    }
}

/// One block's additive attention-score terms, built once per model: the expanded relative
/// position bias [heads, n, n], the shift mask [nW, n, n] (shifted blocks only) and their sum
/// [nW or 1, heads, n, n] as the inference path adds it (0 + bias, then + mask). The traced path
/// adds bias then mask to the scores in place, as before.
final class SwinScoreBias: @unchecked Sendable {
    let bias: Tensor, mask: Tensor?, combined: Tensor

    init(table: Tensor, config c: SwinConfig, stage s: Int, block b: Int) {
        let w = c.window(s), heads = c.numHeads[s], sh = c.shift(s, block: b), n = w * w
        bias = SwinWindows.relativeBias(table, window: w, heads: heads)
        mask = sh > 0 ? SwinWindows.shiftMask(resolution: c.resolution(s), window: w, shift: sh) : nil
        let windows = mask?.shape[0] ?? 1
        combined = Tensor(zeros: [windows, heads, n, n])
        for win in 0..<windows { for h in 0..<heads {
            let dst = combined.data + (win * heads + h) * n * n, bh = bias.data + h * n * n
            for k in 0..<(n * n) { dst[k] += bh[k] }
            if let mask { let mw = mask.data + win * n * n; for k in 0..<(n * n) { dst[k] += mw[k] } }
        } }
    }

    /// Every block's terms, [stage][block].
    static func build(_ c: SwinConfig, _ stages: [[SwinBlock]]) -> [[SwinScoreBias]] {
        stages.enumerated().map { s, blocks in
            blocks.enumerated().map { b, blk in SwinScoreBias(table: blk.relativePositionBias, config: c, stage: s, block: b) }
        }
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

    /// This model with another eval transform.
    public func withPreprocess(_ p: PreprocessConfig) -> SwinTransformer {
        SwinTransformer(config: config, preprocess: p, patchEmbed: patchEmbed, patchNorm: patchNorm, merges: merges, stages: stages,
                        norm: norm, head: head)
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
