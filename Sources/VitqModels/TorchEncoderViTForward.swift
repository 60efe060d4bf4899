import Foundation
import VitqTensor

/// What the backward pass keeps of one forward pass of a ``TorchEncoderViT``.
final class TorchEncoderTrace {
    struct Block {
        let x0: Tensor    // block input = qkv input [B·T, E]
        let qkv: Tensor   // [B·T, 3E]
        let s1: Tensor    // x0 + proj output: norm1's input
        let x1: Tensor    // norm1 output = fc1 input
        let f: Tensor     // fc1 output (pre-ReLU)
        let s2: Tensor    // x1 + fc2 output: norm2's input
    }
    var blocks: [Block] = []
    var cls: Tensor?      // the class-token rows before mlp_head.0 [B, E]
}

/// The forward pass, with vitq's timm tap names (``SearchableModel``): `patch_embed.proj.input`,
/// `patch_embed`, `embed`, each linear op's `<op>.input` and `<op>`, `blocks.i.attn.softmax`,
/// `blocks.i.attn.matmul2` (head-major), traced also `blocks.i.attn.matmul1`; `blocks.i`, `norm`, `logits`.
extension TorchEncoderViT {
    /// Logits [B, classes] for normalised images [B, C, H, W].
    public func forward(_ images: Tensor, observer: ForwardObserver? = nil) -> Tensor {
        forward(images, context: ForwardContext(observer: observer)).logits
    }

    func forward(_ images: Tensor, context ctx: ForwardContext) -> (logits: Tensor, trace: TorchEncoderTrace?) {
        let s = spec
        precondition(images.shape.count == 4 && images.shape[1] == s.inChans && images.shape[2] == s.imgSize && images.shape[3] == s.imgSize,
                     "input shape \(images.shape) does not match the model's [B, \(s.inChans), \(s.imgSize), \(s.imgSize)]")
        let b = images.shape[0], t = s.tokens, e = s.embedDim, np = s.numPatches
        let trace = ctx.keep ? TorchEncoderTrace() : nil
        let cols = Tensor(zeros: [b * np, s.inChans * s.patchSize * s.patchSize])
        Ops.im2col(images, patch: s.patchSize, into: cols)
        ctx.tap("patch_embed.proj.input", cols.data, cols.shape)
        let patches = Tensor(zeros: [b * np, e])
        patchEmbed.forward(cols.data, rows: b * np, into: patches.data)
        ctx.output("patch_embed", patches.data, [b, np, e])
        ctx.tap("patch_embed.proj", patches.data, [b, np, e])
        let x = Tensor(zeros: [b * t, e])
        for i in 0..<b {
            let xi = x.data + i * t * e
            xi.update(from: clsToken.data, count: e)
            (xi + e).update(from: patches.data + i * np * e, count: np * e)
            Ops.add(xi, posEmbed.data, count: t * e)
        }
        ctx.tap("embed", x.data, [b, t, e])
        for (i, blk) in blocks.enumerated() {
            let saved = blockForward(blk, x: x, index: i, context: ctx)
            if let saved { trace?.blocks.append(saved) }
            ctx.tap("blocks.\(i)", x.data, [b, t, e])
        }
        let cls = Tensor(zeros: [b, e])
        for i in 0..<b { (cls.data + i * e).update(from: x.data + i * t * e, count: e) }
        trace?.cls = ctx.saved(cls)
        headNorm.forward(cls.data, rows: b, into: cls.data)
        ctx.tap("norm", cls.data, [b, e])
        ctx.tap("head.input", cls.data, [b, e])
        let logits = Tensor(zeros: [b, s.numClasses])
        head.forward(cls.data, rows: b, into: logits.data)
        ctx.output("head", logits.data, [b, s.numClasses])
        ctx.tap("logits", logits.data, [b, s.numClasses])
        return (logits, trace)
    }

    /// Block `index` in place on x.
    func blockForward(_ blk: TorchEncoderBlock, x: Tensor, index: Int, context ctx: ForwardContext) -> TorchEncoderTrace.Block? {
        let s = spec, rows = x.shape[0], b = rows / s.tokens, t = s.tokens, e = s.embedDim
        let heads = s.numHeads, hd = s.headDim, hidden = s.mlpHidden
        let scale = 1 / Float(hd).squareRoot(), p = "blocks.\(index)"
        let x0 = ctx.saved(x)
        ctx.tap("\(p).attn.qkv.input", x.data, [b, t, e])
        let qkv = Tensor(zeros: [rows, 3 * e])
        blk.qkv.forward(x.data, rows: rows, into: qkv.data)
        ctx.output("\(p).attn.qkv", qkv.data, [b, t, 3 * e])
        let probs = Tensor(zeros: [b, heads, t, t]), cx = Tensor(zeros: [rows, e])
        if ctx.traced {
            precondition(blk.attention is FloatAttention, "\(p).attn is \(type(of: blk.attention)), not FloatAttention")
            Parallel.forChunks(b * heads) { range in
                for j in range {
                    let base = qkv.data + (j / heads) * t * 3 * e + (j % heads) * hd
                    Gemm.sgemm(m: t, n: t, k: hd, alpha: scale, a: base, lda: 3 * e, b: base + e, ldb: 3 * e, transB: true,
                               c: probs.data + j * t * t, ldc: t)
                }
            }
            ctx.output("\(p).attn.matmul1", probs.data, probs.shape)
            Parallel.forChunks(b * heads) { range in
                Ops.softmaxSerial(probs.data + range.lowerBound * t * t, rows: range.count * t, n: t)
            }
            ctx.output("\(p).attn.softmax", probs.data, probs.shape)
            Parallel.forChunks(b * heads) { range in
                for j in range {
                    let bi = j / heads, hh = j % heads
                    Gemm.sgemm(m: t, n: hd, k: t, a: probs.data + j * t * t, lda: t,
                               b: qkv.data + bi * t * 3 * e + 2 * e + hh * hd, ldb: 3 * e, transB: false,
                               c: cx.data + bi * t * e + hh * hd, ldc: e)
                }
            }
        } else {
            Parallel.forChunks(b * heads) { range in
                let scratch = blk.attention.makeScratch(tokens: t, headDim: hd)
                for j in range {
                    let bi = j / heads, h = j % heads
                    let base = qkv.data + bi * t * 3 * e + h * hd
                    blk.attention.attend(head: h, q: base, k: base + e, v: base + 2 * e, ld: 3 * e, tokens: t, headDim: hd,
                                         scale: scale, scoreBias: nil, probs: probs.data + j * t * t,
                                         ctx: cx.data + bi * t * e + h * hd, ldc: e, scratch: scratch)
                }
            }
            ctx.tap("\(p).attn.softmax", probs.data, probs.shape)
        }
        if ctx.hook != nil || ctx.wants("\(p).attn.matmul2") {
            let hm = Tensor(zeros: [b, heads, t, hd])
            HeadLayout.toHeadMajor(cx.data, hm.data, batch: b, tokens: t, heads: heads, headDim: hd)
            ctx.output("\(p).attn.matmul2", hm.data, hm.shape)
            if ctx.hook != nil { HeadLayout.fromHeadMajor(hm.data, cx.data, batch: b, tokens: t, heads: heads, headDim: hd) }
        }
        ctx.tap("\(p).attn.proj.input", cx.data, [b, t, e])
        let a = Tensor(zeros: [rows, e])
        blk.proj.forward(cx.data, rows: rows, into: a.data)
        ctx.output("\(p).attn.proj", a.data, [b, t, e])
        Ops.add(x.data, a.data, count: x.count)
        let s1 = ctx.saved(x)
        blk.norm1.forward(x.data, rows: rows, into: x.data)
        let x1 = ctx.saved(x)
        ctx.tap("\(p).mlp.fc1.input", x.data, [b, t, e])
        let f = Tensor(zeros: [rows, hidden]), act = Tensor(zeros: [rows, hidden])
        blk.fc1.forward(x.data, rows: rows, into: f.data)
        ctx.output("\(p).mlp.fc1", f.data, [b, t, hidden])
        for j in 0..<f.count { act.data[j] = max(f.data[j], 0) }
        ctx.hook?("\(p).mlp.act", act.data, [b, t, hidden])
        ctx.tap("\(p).mlp.fc2.input", act.data, [b, t, hidden])
        blk.fc2.forward(act.data, rows: rows, into: a.data)
        ctx.output("\(p).mlp.fc2", a.data, [b, t, e])
        Ops.add(x.data, a.data, count: x.count)
        let s2 = ctx.saved(x)
        blk.norm2.forward(x.data, rows: rows, into: x.data)
        guard let x0, let s1, let x1, let s2 else { return nil }
        return TorchEncoderTrace.Block(x0: x0, qkv: qkv, s1: s1, x1: x1, f: f, s2: s2)
    }
}
