import Foundation
import VitqTensor

/// The ViT/DeiT forward pass: one pass serves inference (fused integer ops when nothing is
/// observed), observers, hooks and the backward pass (``ForwardContext``).
///
/// Taps: `patch_embed.proj.input`, `patch_embed` (= `patch_embed.proj`, before the prefix tokens)
/// [B, N, E], `embed` [B, T, E], every linear op's `<op>.input`, `blocks.i.attn.qkv`,
/// `blocks.i.attn.softmax` [B, H, T, T], `blocks.i.attn.matmul2` (head-major [B, H, T, hd]), the outputs
/// `blocks.i.attn.proj`, `blocks.i.mlp.fc1` (pre-GELU), `blocks.i.mlp.fc2`, `head` and `head_dist`,
/// `blocks.i`, `norm` and `logits`. Traced (a hook or the backward pass), it runs fp32 with every
/// intermediate in the open and adds `blocks.i.attn.matmul1` (the scaled scores before the
/// softmax); the hook also sees `blocks.i.mlp.act` (fc2's input: the GELU output times any hidden multiplier).
extension VisionTransformer {
    /// Logits [B, classes] for normalised images [B, C, H, W].
    public func forward(_ images: Tensor, observer: ForwardObserver? = nil) -> Tensor {
        forward(images, context: ForwardContext(observer: observer)).logits
    }

    /// The forward pass; with the context's `keep`, the activations the backward pass needs.
    func forward(_ images: Tensor, context ctx: ForwardContext) -> (logits: Tensor, trace: ViTTrace?) {
        let c = config
        precondition(images.shape.count == 4 && images.shape[1] == c.inChans && images.shape[2] == c.imgSize && images.shape[3] == c.imgSize,
                     "input shape \(images.shape) does not match the model's [B, \(c.inChans), \(c.imgSize), \(c.imgSize)]")
        let b = images.shape[0], t = c.tokens, e = c.embedDim, np = c.numPatches
        let trace = ctx.keep ? ViTTrace() : nil

        // patch_embed: im2col then GEMM; then prefix tokens and position embedding.
        let cols = Tensor(zeros: [b * np, c.inChans * c.patchSize * c.patchSize])
        Ops.im2col(images, patch: c.patchSize, into: cols)
        ctx.tap("patch_embed.proj.input", cols.data, cols.shape)
        let patches = Tensor(zeros: [b * np, e])
        patchEmbed.forward(cols.data, rows: b * np, into: patches.data)
        ctx.output("patch_embed", patches.data, [b, np, e])
        ctx.tap("patch_embed.proj", patches.data, [b, np, e])
        let x = embedTokens(patches, batch: b)
        ctx.tap("embed", x.data, [b, t, e])
        return (tail(x, batch: b, fromBlock: 0, trace: trace, context: ctx), trace)
    }

    /// Blocks `start…` of the residual stream `x` [B·T, E] (in place), then the norm and the heads:
    /// the logits. ``forward(_:context:)`` runs it from block 0, ``forward(fromBlock:residual:)``
    /// from a stored stream, so both give the same bits.
    func tail(_ x: Tensor, batch b: Int, fromBlock start: Int, trace: ViTTrace?, context ctx: ForwardContext) -> Tensor {
        let c = config, t = c.tokens, e = c.embedDim
        let work = workspace(batch: b)
        for (i, blk) in blocks.enumerated() where i >= start {
            if let saved = blockForward(blk, x: x, work: work, index: i, context: ctx) { trace?.blocks.append(saved) }
            ctx.tap("blocks.\(i)", x.data, [b, t, e])
        }
        returnWorkspace(work)
        trace?.preNorm = ctx.saved(x)
        norm.forward(x.data, rows: b * t, into: x.data)
        ctx.tap("norm", x.data, [b, t, e])

        // Head on the class token (and, when distilled, head_dist on the distillation token; eval logits are their mean).
        let cls = Tensor(zeros: [b, e])
        for i in 0..<b { (cls.data + i * e).update(from: x.data + i * t * e, count: e) }
        ctx.tap("head.input", cls.data, [b, e])
        let logits = Tensor(zeros: [b, c.numClasses])
        head.forward(cls.data, rows: b, into: logits.data)
        ctx.output("head", logits.data, [b, c.numClasses])
        if let hd = headDist {
            for i in 0..<b { (cls.data + i * e).update(from: x.data + (i * t + 1) * e, count: e) }
            ctx.tap("head_dist.input", cls.data, [b, e])
            let ld = Tensor(zeros: [b, c.numClasses])
            hd.forward(cls.data, rows: b, into: ld.data)
            ctx.output("head_dist", ld.data, [b, c.numClasses])
            for j in 0..<logits.count { logits.data[j] = (logits.data[j] + ld.data[j]) * 0.5 }
        }
        ctx.tap("logits", logits.data, [b, c.numClasses])
        return logits
    }

    /// The token sequence [B·T, E]: class (and distillation) token, then the patch embeddings
    /// [B·N, E], plus the position embedding.
    func embedTokens(_ patches: Tensor, batch b: Int) -> Tensor {
        let c = config, t = c.tokens, e = c.embedDim, np = c.numPatches
        let x = Tensor(zeros: [b * t, e])
        for i in 0..<b {
            let xi = x.data + i * t * e
            xi.update(from: clsToken.data, count: e)
            if let d = distToken { (xi + e).update(from: d.data, count: e) }
            (xi + c.prefixTokens * e).update(from: patches.data + i * np * e, count: np * e)
            Ops.add(xi, posEmbed.data, count: t * e)
        }
        return x
    }

    /// The block scratch buffers for batch size `b`, kept between calls of the same batch size
    /// (allocating ~100 MB per call costs page faults). Concurrent callers get a fresh one.
    func workspace(batch b: Int) -> BlockWorkspace {
        workspaceLock.withLock {
            if let w = cachedWorkspace, w.batch == b { cachedWorkspace = nil; return w }
            return BlockWorkspace(batch: b, config: config)
        }
    }

    func returnWorkspace(_ w: BlockWorkspace) { workspaceLock.withLock { cachedWorkspace = w } }

    /// Scratch buffers shared by all blocks of one forward pass.
    final class BlockWorkspace {
        let h: Tensor, qkv: Tensor, attn: Tensor, ctx: Tensor, hidden: Tensor
        let batch: Int
        /// The context head-major [B, H, T, hd], made when a hook or an observer first asks for it.
        private(set) lazy var headMajor = Tensor(zeros: [batch, config.numHeads, config.tokens, config.headDim])
        private let config: ViTConfig
        init(batch b: Int, config c: ViTConfig) {
            batch = b; config = c
            let rows = b * c.tokens
            h = Tensor(zeros: [rows, c.embedDim])
            qkv = Tensor(zeros: [rows, 3 * c.embedDim])
            attn = Tensor(zeros: [b, c.numHeads, c.tokens, c.tokens])
            ctx = Tensor(zeros: [rows, c.embedDim])
            hidden = Tensor(zeros: [rows, c.mlpHidden])
        }
    }

    /// Block `index` in place on x; what the backward pass needs of it when the context keeps it.
    /// With ``ForwardContext/fuses``, ops that offer it (``NormFusingLinearOp``) take their
    /// LayerNorm and GELU into their own passes, so the taps of those inputs are not produced.
    func blockForward(_ blk: ViTBlock, x: Tensor, work w: BlockWorkspace, index: Int, context ctx: ForwardContext) -> ViTTrace.Block? {
        let c = config, b = x.shape[0] / c.tokens, t = c.tokens, e = c.embedDim
        let heads = c.numHeads, hd = c.headDim, rows = b * t, hidden = c.mlpHidden
        let scale = 1 / Float(hd).squareRoot()
        let p = "blocks.\(index)"
        let x0 = ctx.saved(x)
        // The backward pass keeps qkv and fc1's output: then they get buffers of their own.
        let qkv = ctx.keep ? Tensor(zeros: [rows, 3 * e]) : w.qkv

        if ctx.fuses, let fused = blk.qkv as? any NormFusingLinearOp {
            fused.forward(normalizing: x.data, with: blk.norm1, rows: rows, into: qkv.data)
        } else {
            blk.norm1.forward(x.data, rows: rows, into: w.h.data)
            ctx.tap("\(p).attn.qkv.input", w.h.data, [b, t, e])
            blk.qkv.forward(w.h.data, rows: rows, into: qkv.data)
        }
        ctx.output("\(p).attn.qkv", qkv.data, [b, t, 3 * e])
        // Per (image, head): S = (q·scale)·kᵀ [t, t]; P = softmax(S); ctx[:, head] = P·v.
        if ctx.traced {
            // fp32 with the scores in the open (matmul1, before the softmax).
            precondition(blk.attention is FloatAttention, "\(p).attn is \(type(of: blk.attention)), not FloatAttention")
            Parallel.forChunks(b * heads) { range in
                for j in range {
                    let base = qkv.data + (j / heads) * t * 3 * e + (j % heads) * hd
                    Gemm.sgemm(m: t, n: t, k: hd, alpha: scale, a: base, lda: 3 * e, b: base + e, ldb: 3 * e, transB: true,
                               c: w.attn.data + j * t * t, ldc: t)
                }
            }
            ctx.output("\(p).attn.matmul1", w.attn.data, [b, heads, t, t])
            Parallel.forChunks(b * heads) { range in
                Ops.softmaxSerial(w.attn.data + range.lowerBound * t * t, rows: range.count * t, n: t)
            }
            ctx.output("\(p).attn.softmax", w.attn.data, [b, heads, t, t])
            Parallel.forChunks(b * heads) { range in
                for j in range {
                    let bi = j / heads, hh = j % heads
                    Gemm.sgemm(m: t, n: hd, k: t, a: w.attn.data + j * t * t, lda: t,
                               b: qkv.data + bi * t * 3 * e + 2 * e + hh * hd, ldb: 3 * e, transB: false,
                               c: w.ctx.data + bi * t * e + hh * hd, ldc: e)
                }
            }
        } else {
            // The block's attention kernel (fp32, int8 or fake-quant).
            Gemm.recordBatched(GemmShape(m: t, n: t, k: hd, transB: true, batch: b * heads))
            Gemm.recordBatched(GemmShape(m: t, n: hd, k: t, transB: false, batch: b * heads))
            Parallel.forChunks(b * heads) { range in
                let scratch = blk.attention.makeScratch(tokens: t, headDim: hd)
                for i in range {
                    let bi = i / heads, h = i % heads
                    let base = qkv.data + bi * t * 3 * e + h * hd
                    blk.attention.attend(head: h, q: base, k: base + e, v: base + 2 * e, ld: 3 * e, tokens: t, headDim: hd,
                                         scale: scale, scoreBias: nil, probs: w.attn.data + i * t * t,
                                         ctx: w.ctx.data + bi * t * e + h * hd, ldc: e, scratch: scratch)
                }
            }
            ctx.tap("\(p).attn.softmax", w.attn.data, [b, heads, t, t])
        }
        if ctx.hook != nil || ctx.wants("\(p).attn.matmul2") {
            let hm = w.headMajor
            HeadLayout.toHeadMajor(w.ctx.data, hm.data, batch: b, tokens: t, heads: heads, headDim: hd)
            ctx.output("\(p).attn.matmul2", hm.data, hm.shape)
            if ctx.hook != nil { HeadLayout.fromHeadMajor(hm.data, w.ctx.data, batch: b, tokens: t, heads: heads, headDim: hd) }
        }
        ctx.tap("\(p).attn.proj.input", w.ctx.data, [b, t, e])
        addResidual(blk.proj, w.ctx.data, rows: rows, to: x, scratch: w.h, name: "\(p).attn.proj", shape: [b, t, e], context: ctx)
        let x1 = ctx.saved(x)

        if ctx.fuses, blk.hiddenMultiplier == nil, let fc1 = blk.fc1 as? any NormFusingLinearOp,
           fc1.forwardMLP(normalizing: x.data, with: blk.norm2, rows: rows, next: blk.fc2, addingInto: x.data) {
            return nil
        }
        blk.norm2.forward(x.data, rows: rows, into: w.h.data)
        ctx.tap("\(p).mlp.fc1.input", w.h.data, [b, t, e])
        let f = ctx.keep ? Tensor(zeros: [rows, hidden]) : w.hidden
        blk.fc1.forward(w.h.data, rows: rows, into: f.data)
        ctx.output("\(p).mlp.fc1", f.data, [b, t, hidden])
        Ops.gelu(f.data, w.hidden.data, count: rows * hidden)
        if let m = blk.hiddenMultiplier { Ops.scaleColumns(w.hidden.data, rows: rows, by: m.data, cols: hidden) }
        ctx.hook?("\(p).mlp.act", w.hidden.data, [b, t, hidden])
        ctx.tap("\(p).mlp.fc2.input", w.hidden.data, [b, t, hidden])
        addResidual(blk.fc2, w.hidden.data, rows: rows, to: x, scratch: w.h, name: "\(p).mlp.fc2", shape: [b, t, e], context: ctx)
        guard let x0, let x1 else { return nil }
        return ViTTrace.Block(x0: x0, qkv: qkv, x1: x1, fc1: f)
    }

    /// x += op(input). When its output `name` is hooked or observed it is written to `scratch`
    /// first; otherwise the op adds into x itself (the same bits, ``LinearOp/forward(_:rows:addingInto:)``).
    private func addResidual(_ op: any LinearOp, _ input: UnsafePointer<Float>, rows: Int, to x: Tensor, scratch: Tensor,
                             name: String, shape: [Int], context ctx: ForwardContext) {
        guard ctx.hook != nil || ctx.wants(name) else {
            op.forward(input, rows: rows, addingInto: x.data)
            return
        }
        op.forward(input, rows: rows, into: scratch.data)
        ctx.output(name, scratch.data, shape)
        Ops.add(x.data, scratch.data, count: x.count)
    }
}
