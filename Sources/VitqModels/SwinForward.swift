import VitqTensor

/// The Swin forward pass: one traced forward serves inference, observers, hooks and the backward pass.
extension SwinTransformer {
    /// Logits [B, classes] for normalised images [B, C, H, W].
    public func forward(_ images: Tensor, observer: ForwardObserver? = nil) -> Tensor {
        forward(images, context: ForwardContext(observer: observer)).logits
    }

    /// The forward pass; with the context's `keep`, the activations the backward pass needs.
    func forward(_ images: Tensor, context ctx: ForwardContext) -> (logits: Tensor, trace: SwinTrace?) {
        let c = config
        precondition(images.shape == [images.shape[0], c.inChans, c.imgSize, c.imgSize], "input shape \(images.shape) does not match the model")
        let b = images.shape[0], keep = ctx.keep
        let trace = keep ? SwinTrace() : nil
        var r = c.resolution(0)
        var x = Tensor(zeros: [b * r * r, c.embedDim])
        let cols = Tensor(zeros: [b * r * r, c.inChans * c.patchSize * c.patchSize])
        Ops.im2col(images, patch: c.patchSize, into: cols)
        ctx.tap("patch_embed.proj.input", cols.data, cols.shape)
        patchEmbed.forward(cols.data, rows: cols.shape[0], into: x.data)
        ctx.hook?("patch_embed", x.data, x.shape)
        ctx.tap("patch_embed.proj", x.data, x.shape)
        trace?.patch = ctx.saved(x)
        patchNorm.forward(x.data, rows: x.shape[0], into: x.data)
        ctx.tap("patch_embed", x.data, [b, r, r, c.embedDim])
        for s in 0..<c.stages {
            if let m = merges[s] {
                let mt = keep ? SwinMergeTrace() : nil
                x = merge(x, m, batch: b, resolution: r, dim: c.dim(s - 1), name: "layers.\(s).downsample.reduction", context: ctx, trace: mt)
                if let mt { trace?.merges[s] = mt }
                r /= 2
            }
            for (i, blk) in stages[s].enumerated() {
                let bt = keep ? SwinBlockTrace() : nil
                block(blk, scoreBias: scoreBiases[s][i], x: x, batch: b, resolution: r, dim: c.dim(s), heads: c.numHeads[s], window: c.window(s),
                      shift: c.shift(s, block: i), name: "layers.\(s).blocks.\(i)", context: ctx, trace: bt)
                if let bt { trace?.blocks[[s, i]] = bt }
            }
            ctx.tap("layers.\(s)", x.data, [b, r, r, c.dim(s)])
        }
        let d = c.dim(c.stages - 1)
        trace?.final = ctx.saved(x)
        norm.forward(x.data, rows: x.shape[0], into: x.data)
        ctx.tap("norm", x.data, [b, r, r, d])
        // Global average pool over the token grid, then the head.
        let pooled = Tensor(zeros: [b, d])
        for i in 0..<b {
            for t in 0..<(r * r) { for j in 0..<d { pooled.data[i * d + j] += x.data[(i * r * r + t) * d + j] } }
            for j in 0..<d { pooled.data[i * d + j] /= Float(r * r) }
        }
        ctx.tap("head.fc.input", pooled.data, pooled.shape)
        let logits = Tensor(zeros: [b, c.numClasses])
        head.forward(pooled.data, rows: b, into: logits.data)
        ctx.output("head.fc", logits.data, logits.shape)
        return (logits, trace)
    }

    /// Patch merging: rows of the half-resolution grid hold x[2i,2j], x[2i+1,2j], x[2i,2j+1],
    /// x[2i+1,2j+1] (timm's reshape/permute order), then LayerNorm and the reduction.
    func merge(_ x: Tensor, _ m: SwinMerge, batch b: Int, resolution r: Int, dim d: Int,
               name: String, context ctx: ForwardContext, trace: SwinMergeTrace?) -> Tensor {
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
        ctx.tap("\(name).input", cat.data, cat.shape)
        let out = Tensor(zeros: [b * h * h, 2 * d])
        m.reduction.forward(cat.data, rows: cat.shape[0], into: out.data)
        ctx.output(name, out.data, out.shape)
        return out
    }

    /// One block in place on x [B·R·R, C]. Traced (stage 1, gradient checks) it runs fp32 with every
    /// intermediate in the open; otherwise the block's attention kernel runs.
    func block(_ blk: SwinBlock, scoreBias sbias: SwinScoreBias, x: Tensor, batch b: Int, resolution r: Int, dim d: Int, heads: Int, window w: Int, shift sh: Int,
               name p: String, context ctx: ForwardContext, trace: SwinBlockTrace?) {
        let traced = ctx.traced, observing = ctx.observing
        let rows = x.shape[0], n = w * w, side = r / w, nW = side * side, hd = d / heads
        trace?.input = trace == nil ? nil : x.copy()
        // norm1, then gather the cyclically shifted windows: window row (image, wy, wx, iy, ix)
        // reads grid position ((wy·w + iy + shift) mod R, (wx·w + ix + shift) mod R).
        // With nothing observed, an op that offers it takes norm1 into its own pass; the rows are
        // gathered first (LayerNorm is per row, so the order of the two does not change a bit).
        let fuse = ctx.fuses
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
            ctx.tap("\(p).attn.qkv.input", win.data, win.shape)
            blk.qkv.forward(win.data, rows: rows, into: qkv.data)
        }
        ctx.output("\(p).attn.qkv", qkv.data, qkv.shape)
        // Scores S = scale·Q·Kᵀ + bias (+ mask) per (window, head), then P = softmax(S), ctx = P·V.
        let bias = sbias.bias.data, mask = sbias.mask?.data
        // All probabilities are kept for the backward pass and observers; plain inference keeps one window's.
        let probs = Tensor(zeros: !traced && !observing ? [0] : [b * nW, heads, n, n])
        let attended = Tensor(zeros: [rows, d])
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
                                         scoreBias: combined + (task % combinedTasks) * n * n, probs: own ?? probs.data + task * n * n, ctx: attended.data + bw * n * d + head * hd, ldc: d,
                                         scratch: scratch)
                }
            }
            if observing { ctx.tap("\(p).attn.softmax", probs.data, probs.shape) }
            finish(blk, x: x, attended: attended, source: source, name: p, context: ctx, fuse: fuse, trace: nil)
            return
        }
        // Traced: fp32, each intermediate in the open. matmul1 is the product scale·Q·Kᵀ, before
        // the bias and mask (what the quantized product computes; its gradient is the same).
        Parallel.forChunks(b * nW * heads) { chunk in for task in chunk {
            let bw = task / heads, head = task % heads
            let base = qkv.data + bw * n * 3 * d + head * hd, sp = probs.data + task * n * n
            Gemm.sgemm(m: n, n: n, k: hd, alpha: scale, a: base, lda: 3 * d, b: base + d, ldb: 3 * d, transB: true, c: sp, ldc: n)
        } }
        ctx.output("\(p).attn.matmul1", probs.data, probs.shape)
        Parallel.forChunks(b * nW * heads) { chunk in for task in chunk { addBias(probs.data + task * n * n, task: task) } }
        Parallel.forChunks(b * nW * heads) { chunk in for task in chunk { Ops.softmaxSerial(probs.data + task * n * n, rows: n, n: n) } }
        ctx.output("\(p).attn.softmax", probs.data, probs.shape)
        Parallel.forChunks(b * nW * heads) { chunk in for task in chunk {
            let bw = task / heads, head = task % heads
            Gemm.sgemm(m: n, n: hd, k: n, a: probs.data + task * n * n, lda: n, b: qkv.data + bw * n * 3 * d + 2 * d + head * hd,
                       ldb: 3 * d, transB: false, c: attended.data + bw * n * d + head * hd, ldc: d)
        } }
        // matmul2 is seen head-major, [B·nW, heads, n, hd], as ViT's.
        let hm = Tensor(zeros: [b * nW, heads, n, hd])
        HeadLayout.toHeadMajor(attended.data, hm.data, batch: b * nW, tokens: n, heads: heads, headDim: hd)
        ctx.output("\(p).attn.matmul2", hm.data, hm.shape)
        HeadLayout.fromHeadMajor(hm.data, attended.data, batch: b * nW, tokens: n, heads: heads, headDim: hd)
        if let trace { trace.source = source; trace.qkv = qkv; trace.probs = probs; trace.ctx = attended }
        finish(blk, x: x, attended: attended, source: source, name: p, context: ctx, fuse: false, trace: trace)
    }

    /// The rest of a block after attention: proj, the scatter back into x, and the MLP.
    /// With `fuse`, an fc1 that offers it runs norm2, fc1, GELU and fc2 as one fused pair.
    private func finish(_ blk: SwinBlock, x: Tensor, attended: Tensor, source: [Int], name p: String, context ctx: ForwardContext, fuse: Bool,
                        trace: SwinBlockTrace?) {
        let rows = x.shape[0], d = x.shape[1]
        let attn = Tensor(zeros: [rows, d])
        ctx.tap("\(p).attn.proj.input", attended.data, attended.shape)
        blk.proj.forward(attended.data, rows: rows, into: attn.data)
        ctx.output("\(p).attn.proj", attn.data, attn.shape)
        // Scatter back (the reverse shift) into the residual stream.
        Parallel.forChunks(rows) { chunk in for i in chunk { Ops.add(x.data + source[i] * d, attn.data + i * d, count: d) } }
        trace?.mid = trace == nil ? nil : x.copy()
        if fuse, let fc1 = blk.fc1 as? any NormFusingLinearOp,
           fc1.forwardMLP(normalizing: x.data, with: blk.norm2, rows: rows, next: blk.fc2, addingInto: x.data) { return }
        let h = Tensor(zeros: [rows, d])
        blk.norm2.forward(x.data, rows: rows, into: h.data)
        ctx.tap("\(p).mlp.fc1.input", h.data, h.shape)
        let f = Tensor(zeros: [rows, blk.fc1.outFeatures])
        blk.fc1.forward(h.data, rows: rows, into: f.data)
        ctx.output("\(p).mlp.fc1", f.data, f.shape)
        trace?.fc1 = trace == nil ? nil : f.copy()
        Ops.gelu(f.data, f.data, count: f.count)
        ctx.output("\(p).mlp.act", f.data, f.shape)
        ctx.tap("\(p).mlp.fc2.input", f.data, f.shape)
        blk.fc2.forward(f.data, rows: rows, into: h.data)
        ctx.output("\(p).mlp.fc2", h.data, h.shape)
        Ops.add(x.data, h.data, count: x.count)
    }
}
