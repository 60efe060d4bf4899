import Foundation
import VitqTensor

/// Changes an op's output in place during ``VisionTransformer/tracedForward(_:observer:hook:keep:)``
/// (finite-difference checks). Called with the op output's name, e.g. `blocks.3.attn.matmul1`.
typealias ActivationHook = (_ name: String, _ values: UnsafeMutablePointer<Float>, _ shape: [Int]) -> Void

/// The activations a float forward pass keeps for the backward pass.
final class ForwardTrace {
    /// One block's saved tensors, all [B·T, ·].
    struct Block {
        let x0: Tensor   // block input = norm1 input [B·T, E]
        let qkv: Tensor  // qkv output [B·T, 3E]; the probabilities are recomputed from it
        let x1: Tensor   // after the attention residual = norm2 input [B·T, E]
        let fc1: Tensor  // fc1 output, pre-GELU [B·T, hidden]
    }
    var blocks: [Block] = []
    /// Input of the final norm [B·T, E].
    var preNorm: Tensor?
}

/// The fp32 layers of one block, as the backward pass needs them.
struct FloatBlock {
    let norm1: LayerNorm, qkv: Linear, proj: Linear, norm2: LayerNorm, fc1: Linear, fc2: Linear
    let hiddenMultiplier: Tensor?

    init(_ b: ViTBlock, index i: Int) {
        func linear(_ op: any LinearOp, _ name: String) -> Linear {
            guard let l = op as? Linear else { preconditionFailure("blocks.\(i).\(name) is \(type(of: op)), not a float Linear") }
            return l
        }
        precondition(b.attention is FloatAttention, "blocks.\(i).attn is \(type(of: b.attention)), not FloatAttention")
        norm1 = b.norm1; norm2 = b.norm2; hiddenMultiplier = b.hiddenMultiplier
        qkv = linear(b.qkv, "attn.qkv"); proj = linear(b.proj, "attn.proj")
        fc1 = linear(b.fc1, "mlp.fc1"); fc2 = linear(b.fc2, "mlp.fc2")
    }
}

/// Moves per-head attention context between the token-major [B, T, H·hd] layout of the
/// residual stream and the head-major [B, H, T, hd] layout of the taps.
enum HeadLayout {
    static func toHeadMajor(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, batch b: Int, tokens t: Int, heads: Int, headDim hd: Int) {
        for bi in 0..<b { for h in 0..<heads { for ti in 0..<t {
            (dst + ((bi * heads + h) * t + ti) * hd).update(from: src + (bi * t + ti) * heads * hd + h * hd, count: hd)
        } } }
    }

    static func fromHeadMajor(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, batch b: Int, tokens t: Int, heads: Int, headDim hd: Int) {
        for bi in 0..<b { for h in 0..<heads { for ti in 0..<t {
            (dst + (bi * t + ti) * heads * hd + h * hd).update(from: src + ((bi * heads + h) * t + ti) * hd, count: hd)
        } } }
    }
}

extension VisionTransformer {
    /// The float layers of every block; a precondition failure names the first op that is not float.
    func floatBlocks() -> [FloatBlock] {
        precondition(patchEmbed is Linear, "patch_embed.proj is \(type(of: patchEmbed)), not a float Linear")
        precondition(head is Linear && (headDist.map { $0 is Linear } ?? true), "the head is not a float Linear")
        return blocks.enumerated().map { FloatBlock($1, index: $0) }
    }

    /// The float forward pass of ``forward(_:observer:)`` (same ops, same values, same taps) that also
    /// reports every quantizable op's output (`blocks.i.attn.matmul1`, `…matmul2` head-major, `…proj`,
    /// `blocks.i.mlp.fc1`, `…fc2`, `head`, `head_dist`), lets `hook` change each op output in place
    /// (names as the gradient taps without `.grad`, plus `blocks.i.mlp.act` for fc2's input: the GELU output times any hidden multiplier), and,
    /// when `keep`, returns the activations the backward pass needs.
    func tracedForward(_ images: Tensor, observer: ForwardObserver?, hook: ActivationHook?,
                       keep: Bool) -> (logits: Tensor, trace: ForwardTrace?) {
        let c = config
        precondition(images.shape.count == 4 && images.shape[1] == c.inChans && images.shape[2] == c.imgSize && images.shape[3] == c.imgSize,
                     "input shape \(images.shape) does not match the model's [B, \(c.inChans), \(c.imgSize), \(c.imgSize)]")
        let layers = floatBlocks()
        let b = images.shape[0], t = c.tokens, e = c.embedDim, np = c.numPatches, rows = b * t
        let heads = c.numHeads, hd = c.headDim, hidden = c.mlpHidden
        let scale = 1 / Float(hd).squareRoot()
        func tap(_ name: String, _ p: UnsafePointer<Float>, _ shape: [Int]) {
            if let o = observer, o.wants(name) { o.observe(name, UnsafeBufferPointer(start: p, count: shape.reduce(1, *)), shape: shape) }
        }
        func output(_ name: String, _ p: UnsafeMutablePointer<Float>, _ shape: [Int]) {
            hook?(name, p, shape)
            tap(name, p, shape)
        }
        let trace = keep ? ForwardTrace() : nil

        // patch_embed: im2col, GEMM, prefix tokens, position embedding.
        let cols = Tensor(zeros: [b * np, c.inChans * c.patchSize * c.patchSize])
        Ops.im2col(images, patch: c.patchSize, into: cols)
        tap("patch_embed.proj.input", cols.data, cols.shape)
        let patches = Tensor(zeros: [b * np, e])
        patchEmbed.forward(cols.data, rows: b * np, into: patches.data)
        output("patch_embed", patches.data, [b, np, e])
        tap("patch_embed.proj", patches.data, [b, np, e])
        let x = embedTokens(patches, batch: b)
        tap("embed", x.data, [b, t, e])

        let h = Tensor(zeros: [rows, e]), ctx = Tensor(zeros: [rows, e]), scores = Tensor(zeros: [b, heads, t, t])
        let act = Tensor(zeros: [rows, hidden])
        var headMajor: Tensor?
        for (i, blk) in layers.enumerated() {
            let p = "blocks.\(i)"
            let x0 = keep ? x.copy() : nil
            let qkv = Tensor(zeros: [rows, 3 * e]), f = Tensor(zeros: [rows, hidden])

            blk.norm1.forward(x.data, rows: rows, into: h.data)
            tap("\(p).attn.qkv.input", h.data, [b, t, e])
            blk.qkv.forward(h.data, rows: rows, into: qkv.data)
            output("\(p).attn.qkv", qkv.data, [b, t, 3 * e])
            // Per (image, head): S = (q·scale)·kᵀ; P = softmax(S); ctx[:, head] = P·v.
            Parallel.forChunks(b * heads) { range in
                for j in range {
                    let base = qkv.data + (j / heads) * t * 3 * e + (j % heads) * hd
                    Gemm.sgemm(m: t, n: t, k: hd, alpha: scale, a: base, lda: 3 * e, b: base + e, ldb: 3 * e, transB: true,
                               c: scores.data + j * t * t, ldc: t)
                }
            }
            output("\(p).attn.matmul1", scores.data, [b, heads, t, t])
            Parallel.forChunks(b * heads) { range in
                Ops.softmaxSerial(scores.data + range.lowerBound * t * t, rows: range.count * t, n: t)
            }
            output("\(p).attn.softmax", scores.data, [b, heads, t, t])
            Parallel.forChunks(b * heads) { range in
                for j in range {
                    let bi = j / heads, hh = j % heads
                    Gemm.sgemm(m: t, n: hd, k: t, a: scores.data + j * t * t, lda: t,
                               b: qkv.data + bi * t * 3 * e + 2 * e + hh * hd, ldb: 3 * e, transB: false,
                               c: ctx.data + bi * t * e + hh * hd, ldc: e)
                }
            }
            if hook != nil || observer?.wants("\(p).attn.matmul2") == true {
                let hm = headMajor ?? Tensor(zeros: [b, heads, t, hd])
                headMajor = hm
                HeadLayout.toHeadMajor(ctx.data, hm.data, batch: b, tokens: t, heads: heads, headDim: hd)
                output("\(p).attn.matmul2", hm.data, hm.shape)
                if hook != nil { HeadLayout.fromHeadMajor(hm.data, ctx.data, batch: b, tokens: t, heads: heads, headDim: hd) }
            }
            tap("\(p).attn.proj.input", ctx.data, [b, t, e])
            blk.proj.forward(ctx.data, rows: rows, into: h.data)
            output("\(p).attn.proj", h.data, [b, t, e])
            Ops.add(x.data, h.data, count: rows * e)
            let x1 = keep ? x.copy() : nil

            blk.norm2.forward(x.data, rows: rows, into: h.data)
            tap("\(p).mlp.fc1.input", h.data, [b, t, e])
            blk.fc1.forward(h.data, rows: rows, into: f.data)
            output("\(p).mlp.fc1", f.data, [b, t, hidden])
            Ops.gelu(f.data, act.data, count: rows * hidden)
            if let m = blk.hiddenMultiplier { Ops.scaleColumns(act.data, rows: rows, by: m.data, cols: hidden) }
            hook?("\(p).mlp.act", act.data, [b, t, hidden])
            tap("\(p).mlp.fc2.input", act.data, [b, t, hidden])
            blk.fc2.forward(act.data, rows: rows, into: h.data)
            output("\(p).mlp.fc2", h.data, [b, t, e])
            Ops.add(x.data, h.data, count: rows * e)
            tap(p, x.data, [b, t, e])
            if let x0, let x1 { trace?.blocks.append(.init(x0: x0, qkv: qkv, x1: x1, fc1: f)) }
        }
        trace?.preNorm = keep ? x.copy() : nil
        norm.forward(x.data, rows: rows, into: x.data)
        tap("norm", x.data, [b, t, e])

        // Heads on the prefix tokens; eval logits are the mean of both heads when distilled.
        let cls = Tensor(zeros: [b, e])
        for i in 0..<b { (cls.data + i * e).update(from: x.data + i * t * e, count: e) }
        tap("head.input", cls.data, [b, e])
        let logits = Tensor(zeros: [b, c.numClasses])
        head.forward(cls.data, rows: b, into: logits.data)
        output("head", logits.data, [b, c.numClasses])
        if let hdOp = headDist {
            for i in 0..<b { (cls.data + i * e).update(from: x.data + (i * t + 1) * e, count: e) }
            tap("head_dist.input", cls.data, [b, e])
            let ld = Tensor(zeros: [b, c.numClasses])
            hdOp.forward(cls.data, rows: b, into: ld.data)
            output("head_dist", ld.data, [b, c.numClasses])
            for j in 0..<logits.count { logits.data[j] = (logits.data[j] + ld.data[j]) * 0.5 }
        }
        tap("logits", logits.data, [b, c.numClasses])
        return (logits, trace)
    }
}
