import Foundation
import VitqTensor

extension VisionTransformer {
    /// Forward on normalised images [B, C, H, W] keeping activations, then the hand-written
    /// backward of `loss`. Reports forward taps and gradient taps to `observer` (when it wants them).
    /// `firstImageIndex` is the global index of images[0]: the fisher-sampled labels of image g
    /// are drawn from a generator seeded by (seed, g) only, so results do not depend on batching.
    /// Requires a float model (every linear op a `Linear`, attention `FloatAttention`): precondition otherwise.
    /// Returns the logits [B, classes].
    ///
    /// Forward taps: every tap of ``forward(_:observer:)`` plus each quantizable op's output
    /// (`blocks.i.attn.matmul1` [B,H,T,T] pre-softmax scaled scores, `blocks.i.attn.matmul2` [B,H,T,hd]
    /// head-major, `blocks.i.attn.proj`, `blocks.i.mlp.fc1` pre-GELU, `blocks.i.mlp.fc2`, `head`,
    /// `head_dist`). Gradient taps, dL/d(op output): `patch_embed.grad` [B,N,E], `blocks.i.attn.qkv.grad`,
    /// `…matmul1.grad`, `…softmax.grad`, `…matmul2.grad` (head-major), `…proj.grad`, `blocks.i.mlp.fc1.grad`,
    /// `…act.grad` (fc2's input: post-GELU, times any hidden multiplier), `…fc2.grad`, `head.grad` and `head_dist.grad` (each half of dL/dlogits
    /// when distilled). The backward stops at the lowest block whose gradients the observer wants.
    public func forwardBackward(_ images: Tensor, loss: TaskLoss, firstImageIndex: Int = 0,
                                observer: ForwardObserver?) -> Tensor {
        let (logits, trace) = forward(images, context: ForwardContext(observer: observer, keep: true))
        let dLogits = TaskLossGradient.gradient(loss, logits: logits, firstImageIndex: firstImageIndex) {
            self.forward(images)
        }
        if let observer, let trace { backward(dLogits, trace: trace, observer: observer) }
        return logits
    }

    /// Gradient taps in the order the backward pass produces them (block ones without the `blocks.i.` prefix).
    static let blockGradientTaps = ["mlp.fc2.grad", "mlp.act.grad", "mlp.fc1.grad", "attn.proj.grad",
                                    "attn.matmul2.grad", "attn.softmax.grad", "attn.matmul1.grad", "attn.qkv.grad"]

    /// Propagates dL/dlogits [B, classes] back through the network recorded in `trace`, reporting
    /// the gradient taps that `observer` wants.
    func backward(_ dLogits: Tensor, trace: ViTTrace, observer o: ForwardObserver) {
        let c = config, layers = floatBlocks()
        let b = dLogits.shape[0], t = c.tokens, e = c.embedDim, rows = b * t, classes = c.numClasses
        func tap(_ name: String, _ p: UnsafePointer<Float>, _ shape: [Int]) {
            if o.wants(name) { o.observe(name, UnsafeBufferPointer(start: p, count: shape.reduce(1, *)), shape: shape) }
        }
        let wantsPatch = o.wants("patch_embed.grad")
        let lowest = wantsPatch ? 0
            : (0..<c.depth).first { i in Self.blockGradientTaps.contains { o.wants("blocks.\(i).\($0)") } } ?? c.depth

        // Heads: logits = head (or (head + head_dist)/2); each head reads one prefix row of the final norm.
        let dNorm = Tensor(zeros: [rows, e])
        let dHead = Tensor(zeros: [b, classes]), dPrefix = Tensor(zeros: [b, e])
        let heads: [(name: String, op: any LinearOp, row: Int)] = [("head", head, 0)] + (headDist.map { [("head_dist", $0, 1)] } ?? [])
        let share: Float = heads.count == 2 ? 0.5 : 1
        for (name, op, row) in heads {
            for j in 0..<dHead.count { dHead.data[j] = share * dLogits.data[j] }
            tap("\(name).grad", dHead.data, [b, classes])
            guard lowest < c.depth else { continue }
            (op as! Linear).backward(dHead.data, rows: b, into: dPrefix.data)
            for i in 0..<b { (dNorm.data + (i * t + row) * e).update(from: dPrefix.data + i * e, count: e) }
        }
        guard lowest < c.depth, let preNorm = trace.preNorm else { return }

        // dx: dL/d(residual stream), walked back block by block.
        let dx = Tensor(zeros: [rows, e])
        norm.backward(dNorm.data, x: preNorm.data, rows: rows, accumulateInto: dx.data)
        let work = BackwardWorkspace(batch: b, config: c)
        for i in stride(from: c.depth - 1, through: lowest, by: -1) {
            blockBackward(layers[i], saved: trace.blocks[i], dx: dx, work: work, index: i, tap: tap)
        }
        if wantsPatch {
            let np = c.numPatches, dPatches = Tensor(zeros: [b, np, e])
            for i in 0..<b {
                (dPatches.data + i * np * e).update(from: dx.data + (i * t + c.prefixTokens) * e, count: np * e)
            }
            tap("patch_embed.grad", dPatches.data, dPatches.shape)
        }
    }

    /// Scratch of the backward pass, shared by all blocks.
    final class BackwardWorkspace {
        let dh: Tensor, dctx: Tensor, dqkv: Tensor, dhidden: Tensor, probs: Tensor, dscores: Tensor, headMajor: Tensor
        init(batch b: Int, config c: ViTConfig) {
            let rows = b * c.tokens
            dh = Tensor(zeros: [rows, c.embedDim]); dctx = Tensor(zeros: [rows, c.embedDim])
            dqkv = Tensor(zeros: [rows, 3 * c.embedDim]); dhidden = Tensor(zeros: [rows, c.mlpHidden])
            probs = Tensor(zeros: [b, c.numHeads, c.tokens, c.tokens]); dscores = Tensor(zeros: [b, c.numHeads, c.tokens, c.tokens])
            headMajor = Tensor(zeros: [b, c.numHeads, c.tokens, c.headDim])
        }
    }

    /// One block backward: on entry `dx` is dL/d(block output), on return dL/d(block input).
    func blockBackward(_ blk: FloatBlock, saved s: ViTTrace.Block, dx: Tensor, work w: BackwardWorkspace, index: Int,
                       tap: (String, UnsafePointer<Float>, [Int]) -> Void) {
        let c = config, rows = dx.shape[0], b = rows / c.tokens, t = c.tokens, e = c.embedDim
        let heads = c.numHeads, hd = c.headDim, hidden = c.mlpHidden
        let scale = 1 / Float(hd).squareRoot()
        let p = "blocks.\(index)"

        // MLP: x2 = x1 + fc2(gelu(fc1(norm2(x1)))).
        tap("\(p).mlp.fc2.grad", dx.data, [b, t, e])
        blk.fc2.backward(dx.data, rows: rows, into: w.dhidden.data)
        tap("\(p).mlp.act.grad", w.dhidden.data, [b, t, hidden])
        if let m = blk.hiddenMultiplier { Ops.scaleColumns(w.dhidden.data, rows: rows, by: m.data, cols: hidden) }
        Ops.geluBackward(w.dhidden.data, f: s.fc1.data, into: w.dhidden.data, count: rows * hidden)
        tap("\(p).mlp.fc1.grad", w.dhidden.data, [b, t, hidden])
        blk.fc1.backward(w.dhidden.data, rows: rows, into: w.dh.data)
        blk.norm2.backward(w.dh.data, x: s.x1.data, rows: rows, accumulateInto: dx.data)

        // Attention: x1 = x0 + proj(attn(norm1(x0))).
        tap("\(p).attn.proj.grad", dx.data, [b, t, e])
        blk.proj.backward(dx.data, rows: rows, into: w.dctx.data)
        HeadLayout.toHeadMajor(w.dctx.data, w.headMajor.data, batch: b, tokens: t, heads: heads, headDim: hd)
        tap("\(p).attn.matmul2.grad", w.headMajor.data, w.headMajor.shape)
        let qkv = s.qkv.data, dqkv = w.dqkv.data, probs = w.probs.data, dscores = w.dscores.data
        // Per (image, head): recompute P as the forward did; dP = dC·Vᵀ; dV = Pᵀ·dC.
        Parallel.forChunks(b * heads) { range in
            for j in range {
                let bi = j / heads, off = bi * t * 3 * e + (j % heads) * hd, pj = probs + j * t * t
                Gemm.sgemm(m: t, n: t, k: hd, alpha: scale, a: qkv + off, lda: 3 * e, b: qkv + off + e, ldb: 3 * e,
                           transB: true, c: pj, ldc: t)
                Ops.softmaxSerial(pj, rows: t, n: t)
                FloatAttention.contextBackward(p: pj, dc: w.dctx.data + bi * t * e + (j % heads) * hd, ldc: e,
                                               v: qkv + off + 2 * e, dv: dqkv + off + 2 * e, ld: 3 * e,
                                               tokens: t, headDim: hd, dp: dscores + j * t * t)
            }
        }
        tap("\(p).attn.softmax.grad", dscores, [b, heads, t, t])
        // dS = P ⊙ (dP − rowsum(dP ⊙ P)); dQ = scale·dS·K; dK = scale·dSᵀ·Q.
        Parallel.forChunks(b * heads) { range in
            for j in range {
                let off = (j / heads) * t * 3 * e + (j % heads) * hd
                FloatAttention.softmaxBackward(p: probs + j * t * t, dscores + j * t * t, rows: t, n: t)
                FloatAttention.scoresBackward(ds: dscores + j * t * t, q: qkv + off, k: qkv + off + e,
                                              dq: dqkv + off, dk: dqkv + off + e, ld: 3 * e,
                                              tokens: t, headDim: hd, scale: scale)
            }
        }
        tap("\(p).attn.matmul1.grad", dscores, [b, heads, t, t])
        tap("\(p).attn.qkv.grad", dqkv, [b, t, 3 * e])
        blk.qkv.backward(dqkv, rows: rows, into: w.dh.data)
        blk.norm1.backward(w.dh.data, x: s.x0.data, rows: rows, accumulateInto: dx.data)
    }
}
