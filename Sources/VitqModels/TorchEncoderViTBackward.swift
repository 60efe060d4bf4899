import Foundation
import VitqTensor

extension TorchEncoderViT {
    /// Forward keeping activations, then the hand-written backward of `loss`; reports the forward
    /// taps and the gradient taps dL/d(op output) (`head.grad`, `blocks.i.mlp.fc2.grad`,
    /// `….mlp.act.grad`, `….mlp.fc1.grad`, `….attn.proj.grad`, `….attn.matmul2.grad` (head-major),
    /// `….attn.softmax.grad`, `….attn.matmul1.grad`, `….attn.qkv.grad`, `patch_embed.grad`).
    /// Requires a float model. Returns the logits.
    public func forwardBackward(_ images: Tensor, loss: TaskLoss, firstImageIndex: Int = 0, observer: ForwardObserver?) -> Tensor {
        let (logits, trace) = forward(images, context: ForwardContext(observer: observer, keep: true))
        let dLogits = TaskLossGradient.gradient(loss, logits: logits, firstImageIndex: firstImageIndex) { self.forward(images) }
        if let observer, let trace { backward(dLogits, trace: trace, observer: observer) }
        return logits
    }

    func backward(_ dLogits: Tensor, trace: TorchEncoderTrace, observer o: ForwardObserver) {
        let s = spec, b = dLogits.shape[0], t = s.tokens, e = s.embedDim, rows = b * t
        func tap(_ name: String, _ p: UnsafePointer<Float>, _ shape: [Int]) {
            if o.wants(name) { o.observe(name, UnsafeBufferPointer(start: p, count: shape.reduce(1, *)), shape: shape) }
        }
        tap("head.grad", dLogits.data, dLogits.shape)
        guard let cls = trace.cls else { return }
        let dNormOut = Tensor(zeros: [b, e]), dCls = Tensor(zeros: [b, e])
        (head as! Linear).backward(dLogits.data, rows: b, into: dNormOut.data)
        headNorm.backward(dNormOut.data, x: cls.data, rows: b, accumulateInto: dCls.data)
        let dx = Tensor(zeros: [rows, e])
        for i in 0..<b { (dx.data + i * t * e).update(from: dCls.data + i * e, count: e) }
        for i in stride(from: blocks.count - 1, through: 0, by: -1) {
            blockBackward(blocks[i], saved: trace.blocks[i], dx: dx, index: i, tap: tap)
        }
        let np = s.numPatches, dp = Tensor(zeros: [b, np, e])
        for i in 0..<b { (dp.data + i * np * e).update(from: dx.data + (i * t + 1) * e, count: np * e) }
        tap("patch_embed.grad", dp.data, dp.shape)
    }

    /// On entry `dx` is dL/d(block output), on return dL/d(block input).
    func blockBackward(_ blk: TorchEncoderBlock, saved sv: TorchEncoderTrace.Block, dx: Tensor, index: Int,
                       tap: (String, UnsafePointer<Float>, [Int]) -> Void) {
        let s = spec, rows = dx.shape[0], b = rows / s.tokens, t = s.tokens, e = s.embedDim
        let heads = s.numHeads, hd = s.headDim, hidden = s.mlpHidden
        let scale = 1 / Float(hd).squareRoot(), p = "blocks.\(index)"
        let fc1 = blk.fc1 as! Linear, fc2 = blk.fc2 as! Linear, proj = blk.proj as! Linear, qkvOp = blk.qkv as! Linear
        // y = norm2(s2), s2 = x1 + fc2(relu(fc1(x1))).
        let ds2 = Tensor(zeros: [rows, e])
        blk.norm2.backward(dx.data, x: sv.s2.data, rows: rows, accumulateInto: ds2.data)
        tap("\(p).mlp.fc2.grad", ds2.data, [b, t, e])
        let dAct = Tensor(zeros: [rows, hidden])
        fc2.backward(ds2.data, rows: rows, into: dAct.data)
        tap("\(p).mlp.act.grad", dAct.data, [b, t, hidden])
        // ReLU: the gradient passes where fc1's output is positive.
        for j in 0..<dAct.count where !(sv.f.data[j] > 0) { dAct.data[j] = 0 }
        tap("\(p).mlp.fc1.grad", dAct.data, [b, t, hidden])
        let dh = Tensor(zeros: [rows, e])
        fc1.backward(dAct.data, rows: rows, into: dh.data)
        Ops.add(ds2.data, dh.data, count: ds2.count)            // dL/dx1
        // x1 = norm1(s1), s1 = x0 + proj(attn(x0)).
        let ds1 = Tensor(zeros: [rows, e])
        blk.norm1.backward(ds2.data, x: sv.s1.data, rows: rows, accumulateInto: ds1.data)
        tap("\(p).attn.proj.grad", ds1.data, [b, t, e])
        let dctx = Tensor(zeros: [rows, e])
        proj.backward(ds1.data, rows: rows, into: dctx.data)
        let hm = Tensor(zeros: [b, heads, t, hd])
        HeadLayout.toHeadMajor(dctx.data, hm.data, batch: b, tokens: t, heads: heads, headDim: hd)
        tap("\(p).attn.matmul2.grad", hm.data, hm.shape)
        let qkv = sv.qkv.data, dqkvT = Tensor(zeros: [rows, 3 * e]), dqkv = dqkvT.data
        let probsT = Tensor(zeros: [b, heads, t, t]), dsT = Tensor(zeros: [b, heads, t, t])
        let probs = probsT.data, dscores = dsT.data
        Parallel.forChunks(b * heads) { range in
            for j in range {
                let bi = j / heads, off = bi * t * 3 * e + (j % heads) * hd, pj = probs + j * t * t
                Gemm.sgemm(m: t, n: t, k: hd, alpha: scale, a: qkv + off, lda: 3 * e, b: qkv + off + e, ldb: 3 * e, transB: true, c: pj, ldc: t)
                Ops.softmaxSerial(pj, rows: t, n: t)
                FloatAttention.contextBackward(p: pj, dc: dctx.data + bi * t * e + (j % heads) * hd, ldc: e,
                                               v: qkv + off + 2 * e, dv: dqkv + off + 2 * e, ld: 3 * e,
                                               tokens: t, headDim: hd, dp: dscores + j * t * t)
            }
        }
        tap("\(p).attn.softmax.grad", dscores, [b, heads, t, t])
        Parallel.forChunks(b * heads) { range in
            for j in range {
                let off = (j / heads) * t * 3 * e + (j % heads) * hd
                FloatAttention.softmaxBackward(p: probs + j * t * t, dscores + j * t * t, rows: t, n: t)
                FloatAttention.scoresBackward(ds: dscores + j * t * t, q: qkv + off, k: qkv + off + e,
                                              dq: dqkv + off, dk: dqkv + off + e, ld: 3 * e, tokens: t, headDim: hd, scale: scale)
            }
        }
        tap("\(p).attn.matmul1.grad", dscores, [b, heads, t, t])
        tap("\(p).attn.qkv.grad", dqkv, [b, t, 3 * e])
        qkvOp.backward(dqkv, rows: rows, into: dh.data)
        // dL/dx0 = ds1 (residual) + the qkv path.
        for j in 0..<dx.count { dx.data[j] = ds1.data[j] + dh.data[j] }
    }
}
