import Foundation
import VitqTensor

/// The input-gradient backward of ``SwinTransformer``, reporting dL/d(output) of every
/// quantizable op as `<op>.grad`: `patch_embed` (the projection, before its norm),
/// `layers.s.downsample.reduction`, and per block `attn.qkv`, `attn.matmul1` (the scores; the
/// bias and mask added after them do not change it), `attn.softmax`, `attn.matmul2` (head-major),
/// `attn.proj`, `mlp.fc1`, `mlp.act` (the GELU output), `mlp.fc2`; and `head.fc`. Attention
/// gradients are in window order ([B·nW, heads, n, n] and window rows), as the forward runs them.
extension SwinTransformer {
    /// The logits of `images`; with an observer, also the gradient taps of `loss`.
    public func forwardBackward(_ images: Tensor, loss: TaskLoss, firstImageIndex: Int = 0,
                                observer: ForwardObserver?) -> Tensor {
        let (logits, trace) = forward(images, context: ForwardContext(observer: observer, keep: observer != nil))
        guard let observer, let trace else { return logits }
        let dLogits = TaskLossGradient.gradient(loss, logits: logits, firstImageIndex: firstImageIndex) { self.forward(images) }
        backward(dLogits, trace: trace, observer: observer)
        return logits
    }

    func backward(_ dLogits: Tensor, trace: SwinTrace, observer o: ForwardObserver) {
        let c = config, b = dLogits.shape[0]
        func tap(_ name: String, _ t: Tensor) {
            if o.wants(name) { o.observe(name, UnsafeBufferPointer(start: t.data, count: t.count), shape: t.shape) }
        }
        tap("head.fc.grad", dLogits)
        var r = c.resolution(c.stages - 1)
        let d = c.dim(c.stages - 1)
        // head and average pool: every token of image i gets dpooled_i / R².
        let dPooled = Tensor(zeros: [b, d])
        Self.float(head).backward(dLogits.data, rows: b, into: dPooled.data)
        let dNorm = Tensor(zeros: [b * r * r, d])
        for i in 0..<b { for t in 0..<(r * r) { for j in 0..<d { dNorm.data[(i * r * r + t) * d + j] = dPooled.data[i * d + j] / Float(r * r) } } }
        var dx = Tensor(zeros: dNorm.shape)
        norm.backward(dNorm.data, x: trace.final!.data, rows: dNorm.shape[0], accumulateInto: dx.data)
        for s in (0..<c.stages).reversed() {
            for i in (0..<c.depths[s]).reversed() {
                blockBackward(stages[s][i], trace: trace.blocks[[s, i]]!, dx: dx, batch: b, resolution: r, dim: c.dim(s),
                              heads: c.numHeads[s], window: c.window(s), name: "layers.\(s).blocks.\(i)", tap: tap)
            }
            if let m = merges[s] {
                tap("layers.\(s).downsample.reduction.grad", dx)
                dx = mergeBackward(m, trace: trace.merges[s]!, dOut: dx, batch: b, resolution: r * 2, dim: c.dim(s - 1))
                r *= 2
            }
        }
        let dPatch = Tensor(zeros: dx.shape)
        patchNorm.backward(dx.data, x: trace.patch!.data, rows: dx.shape[0], accumulateInto: dPatch.data)
        tap("patch_embed.grad", dPatch)
    }

    /// dx: dL/d(block output) in, dL/d(block input) out.
    func blockBackward(_ blk: SwinBlock, trace t: SwinBlockTrace, dx: Tensor, batch b: Int, resolution r: Int, dim d: Int,
                       heads: Int, window w: Int, name p: String, tap: (String, Tensor) -> Void) {
        let rows = dx.shape[0], n = w * w, nW = (r / w) * (r / w), hd = d / heads, hidden = blk.fc1.outFeatures
        // MLP: x2 = x1 + fc2(gelu(fc1(norm2(x1)))).
        tap("\(p).mlp.fc2.grad", dx)
        let dAct = Tensor(zeros: [rows, hidden])
        Self.float(blk.fc2).backward(dx.data, rows: rows, into: dAct.data)
        tap("\(p).mlp.act.grad", dAct)
        Ops.geluBackward(dAct.data, f: t.fc1!.data, into: dAct.data, count: dAct.count)
        tap("\(p).mlp.fc1.grad", dAct)
        let dh = Tensor(zeros: [rows, d])
        Self.float(blk.fc1).backward(dAct.data, rows: rows, into: dh.data)
        blk.norm2.backward(dh.data, x: t.mid!.data, rows: rows, accumulateInto: dx.data)
        // Attention: x1 = x0 + scatter(proj(attention(gather(norm1(x0))))).
        let source = t.source
        let dProj = Tensor(zeros: [rows, d])
        Parallel.forChunks(rows) { chunk in for i in chunk { (dProj.data + i * d).update(from: dx.data + source[i] * d, count: d) } }
        tap("\(p).attn.proj.grad", dProj)
        let dCtx = Tensor(zeros: [rows, d])
        Self.float(blk.proj).backward(dProj.data, rows: rows, into: dCtx.data)
        let dHeadMajor = Tensor(zeros: [b * nW, heads, n, hd])
        HeadLayout.toHeadMajor(dCtx.data, dHeadMajor.data, batch: b * nW, tokens: n, heads: heads, headDim: hd)
        tap("\(p).attn.matmul2.grad", dHeadMajor)
        let qkv = t.qkv!, probs = t.probs!
        let dQKV = Tensor(zeros: [rows, 3 * d]), dS = Tensor(zeros: probs.shape)
        Parallel.forChunks(b * nW * heads) { chunk in for task in chunk {
            let bw = task / heads, head = task % heads, off = bw * n * 3 * d + head * hd
            FloatAttention.contextBackward(p: probs.data + task * n * n, dc: dCtx.data + bw * n * d + head * hd, ldc: d,
                                           v: qkv.data + off + 2 * d, dv: dQKV.data + off + 2 * d, ld: 3 * d,
                                           tokens: n, headDim: hd, dp: dS.data + task * n * n)
        } }
        tap("\(p).attn.softmax.grad", dS)
        Parallel.forChunks(b * nW * heads) { chunk in for task in chunk { FloatAttention.softmaxBackward(p: probs.data + task * n * n, dS.data + task * n * n, rows: n, n: n) } }
        tap("\(p).attn.matmul1.grad", dS)
        let scale = 1 / Float(hd).squareRoot()
        Parallel.forChunks(b * nW * heads) { chunk in for task in chunk {
            let bw = task / heads, head = task % heads, off = bw * n * 3 * d + head * hd
            FloatAttention.scoresBackward(ds: dS.data + task * n * n, q: qkv.data + off, k: qkv.data + off + d,
                                          dq: dQKV.data + off, dk: dQKV.data + off + d, ld: 3 * d, tokens: n, headDim: hd, scale: scale)
        } }
        tap("\(p).attn.qkv.grad", dQKV)
        let dWin = Tensor(zeros: [rows, d])
        Self.float(blk.qkv).backward(dQKV.data, rows: rows, into: dWin.data)
        let dh1 = Tensor(zeros: [rows, d])
        Parallel.forChunks(rows) { chunk in for i in chunk { (dh1.data + source[i] * d).update(from: dWin.data + i * d, count: d) } }
        blk.norm1.backward(dh1.data, x: t.input!.data, rows: rows, accumulateInto: dx.data)
    }

    /// The fp32 layer behind `op` (the backward pass runs on the float model).
    static func float(_ op: any LinearOp) -> Linear {
        guard let l = op as? Linear else { preconditionFailure("the Swin backward pass runs on the float model") }
        return l
    }

    /// dL/d(merge input) [B·R·R, C] from dL/d(merge output) [B·(R/2)², 2C].
    func mergeBackward(_ m: SwinMerge, trace: SwinMergeTrace, dOut: Tensor, batch b: Int, resolution r: Int, dim d: Int) -> Tensor {
        let h = r / 2, rows = b * h * h
        let dNormed = Tensor(zeros: [rows, 4 * d]), dCat = Tensor(zeros: [rows, 4 * d])
        Self.float(m.reduction).backward(dOut.data, rows: rows, into: dNormed.data)
        m.norm.backward(dNormed.data, x: trace.concatenated!.data, rows: rows, accumulateInto: dCat.data)
        let dx = Tensor(zeros: [b * r * r, d])
        for i in 0..<b { for y in 0..<h { for xx in 0..<h {
            let src = dCat.data + ((i * h + y) * h + xx) * 4 * d
            for (k, (dy, dxo)) in [(0, 0), (1, 0), (0, 1), (1, 1)].enumerated() {
                (dx.data + ((i * r + 2 * y + dy) * r + 2 * xx + dxo) * d).update(from: src + k * d, count: d)
            }
        } } }
        return dx
    }
}
