import Foundation
import VitqModels
import VitqTensor

/// The quantized forward and the hand-written backward of one pre-norm ViT block
/// (x1 = x0 + proj(attn(norm1(x0))), x2 = x1 + fc2(gelu(fc1(norm2(x1))))) with every quantizer
/// of the block in its fake-quant form: each linear op's input (``LearnedQuantizer``) and weight
/// (``SoftRounding``), and the attention's Q, K, V (learned steps per head) and probabilities
/// (as searched). The backward runs through the quantizers with the straight-through estimator
/// and gives the gradients of the rounding logits and of the log steps; it stops at the block's
/// input, which reconstruction does not change.
final class ViTBlockReconstruction: ReconstructionUnit, @unchecked Sendable {
    let qkv: ReconstructedLinear, proj: ReconstructedLinear, fc1: ReconstructedLinear, fc2: ReconstructedLinear
    let norm1: LayerNorm, norm2: LayerNorm
    let hiddenMultiplier: Tensor?
    /// Q, K, V and the probabilities; nil when the attention stays float.
    let q: LearnedQuantizer?, k: LearnedQuantizer?, v: LearnedQuantizer?, probs: LearnedQuantizer?
    let tokens: Int, dim: Int, heads: Int, headDim: Int, hidden: Int
    let capacity: Int
    // Activations of the last forward, [rows, ·].
    let x0: Tensor, h1: Tensor, a1: Tensor, qkvOut: Tensor, qkvHat: Tensor, p: Tensor, pHat: Tensor, ctx: Tensor, a2: Tensor
    let x1: Tensor, h2: Tensor, a3: Tensor, f: Tensor, g: Tensor, a4: Tensor, x2: Tensor
    // Gradients.
    let dx2: Tensor, dHidden: Tensor, dE: Tensor, dx1: Tensor, dCtx: Tensor, dQKV: Tensor, dP: Tensor

    /// The block `block` of a float ViT, with the decisions of its ops (absent: float), for
    /// batches of up to `images` images.
    init(block blk: ViTBlock, index: Int, config c: ViTConfig, decisions: [String: OpDecision], settings: ReconstructionSettings, images: Int,
         quantizesInputs: Bool = true) {
        let pfx = "blocks.\(index)"
        func part(_ op: any LinearOp, _ name: String) -> ReconstructedLinear {
            ReconstructedLinear(name: "\(pfx).\(name)", float: op as! Linear, decision: decisions["\(pfx).\(name)"], settings: settings,
                                quantizesInput: quantizesInputs)
        }
        qkv = part(blk.qkv, "attn.qkv"); proj = part(blk.proj, "attn.proj"); fc1 = part(blk.fc1, "mlp.fc1"); fc2 = part(blk.fc2, "mlp.fc2")
        norm1 = blk.norm1; norm2 = blk.norm2; hiddenMultiplier = blk.hiddenMultiplier
        if let qk = decisions["\(pfx).attn.matmul1"], let pv = decisions["\(pfx).attn.matmul2"] {
            q = LearnedQuantizer(qk.quantizers[0], stepRate: settings.stepRate)
            k = LearnedQuantizer(qk.quantizers[1], stepRate: settings.stepRate)
            probs = LearnedQuantizer(pv.quantizers[0], stepRate: 0)
            v = LearnedQuantizer(pv.quantizers[1], stepRate: settings.stepRate)
        } else { q = nil; k = nil; v = nil; probs = nil }
        tokens = c.tokens; dim = c.embedDim; heads = c.numHeads; headDim = c.headDim; hidden = c.mlpHidden
        capacity = images
        let rows = images * tokens, e = dim
        func t(_ n: Int) -> Tensor { Tensor(zeros: [n]) }
        x0 = t(rows * e); h1 = t(rows * e); a1 = t(rows * e); qkvOut = t(rows * 3 * e); qkvHat = t(rows * 3 * e)
        p = t(images * heads * tokens * tokens); pHat = t(images * heads * tokens * tokens)
        ctx = t(rows * e); a2 = t(rows * e); x1 = t(rows * e); h2 = t(rows * e); a3 = t(rows * e)
        f = t(rows * hidden); g = t(rows * hidden); a4 = t(rows * hidden); x2 = t(rows * e)
        dx2 = t(rows * e); dHidden = t(rows * hidden); dE = t(rows * e); dx1 = t(rows * e); dCtx = t(rows * e)
        dQKV = t(rows * 3 * e); dP = t(images * heads * tokens * tokens)
    }

    var linears: [ReconstructedLinear] { [qkv, proj, fc1, fc2] }
    var quantizers: [LearnedQuantizer] { ([qkv.input, proj.input, fc1.input, fc2.input, q, k, v].compactMap { $0 }).filter(\.learns) }
    var rowsPerImage: Int { tokens }
    var inputWidth: Int { dim }
    var outputWidth: Int { dim }
    var input: Tensor { x0 }
    var output: Tensor { x2 }
    var outputGradient: Tensor { dx2 }

    /// Draws QDrop's masks for a step: each element of a quantized linear input stays float with
    /// probability `probability`.
    func drawDropMasks(probability: Float, rows: Int, random: inout SeededRandom) -> [String: [UInt8]] {
        guard probability > 0 else { return [:] }
        var masks: [String: [UInt8]] = [:]
        for (name, width) in [("qkv", dim), ("proj", dim), ("fc1", dim), ("fc2", hidden)] {
            masks[name] = (0..<(rows * width)).map { _ in random.uniform() < Double(probability) ? 1 : 0 }
        }
        return masks
    }

    /// Fake-quantizes `x` into `y` with `quant` (or copies it for a float op).
    private func quantize(_ quant: LearnedQuantizer?, _ x: Tensor, _ y: Tensor, rows: Int, cols: Int, keep: [UInt8]?) {
        guard let quant else { y.data.update(from: x.data, count: rows * cols); return }
        if let keep {
            keep.withUnsafeBufferPointer { quant.forward(x.data, rows: rows, cols: cols, ld: cols, group: 0, into: y.data, keep: $0.baseAddress!) }
        } else {
            quant.forward(x.data, rows: rows, cols: cols, ld: cols, group: 0, into: y.data)
        }
    }

    private func unquantize(_ quant: LearnedQuantizer?, _ d: Tensor, x: Tensor, rows: Int, cols: Int, keep: [UInt8]?) -> Double {
        guard let quant else { return 0 }
        if let keep { return keep.withUnsafeBufferPointer { quant.backward(d.data, x: x.data, rows: rows, cols: cols, ld: cols, group: 0, keep: $0.baseAddress!) } }
        return quant.backward(d.data, x: x.data, rows: rows, cols: cols, ld: cols, group: 0)
    }

    /// The block's output x2 for the `images` images in ``x0``, keeping what the backward needs.
    func forward(images b: Int, masks: [String: [UInt8]] = [:]) {
        let t = tokens, e = dim, rows = b * t, hd = headDim, nh = heads
        let scale = 1 / Float(hd).squareRoot()
        norm1.forward(x0.data, rows: rows, into: h1.data)
        quantize(qkv.input, h1, a1, rows: rows, cols: e, keep: masks["qkv"])
        qkv.forward(a1.data, rows: rows, into: qkvOut.data)
        qkvHat.data.update(from: qkvOut.data, count: rows * 3 * e)
        let qo = qkvOut.data, qh = qkvHat.data, pp = p.data, ph = pHat.data, cx = ctx.data
        Parallel.forChunks(b * nh) { range in
            for j in range {
                let bi = j / nh, head = j % nh, off = bi * t * 3 * e + head * hd
                if let q, let k, let v {
                    q.forward(qo + off, rows: t, cols: hd, ld: 3 * e, group: q.searched.index(head: head), into: qh + off)
                    k.forward(qo + off + e, rows: t, cols: hd, ld: 3 * e, group: k.searched.index(head: head), into: qh + off + e)
                    v.forward(qo + off + 2 * e, rows: t, cols: hd, ld: 3 * e, group: v.searched.index(head: head), into: qh + off + 2 * e)
                }
                let pj = pp + j * t * t, phj = ph + j * t * t
                Gemm.sgemm(m: t, n: t, k: hd, alpha: scale, a: qh + off, lda: 3 * e, b: qh + off + e, ldb: 3 * e, transB: true, c: pj, ldc: t)
                Ops.softmaxSerial(pj, rows: t, n: t)
                if let probs { probs.forward(pj, rows: t, cols: t, ld: t, group: probs.searched.index(head: head), into: phj) }
                else { phj.update(from: pj, count: t * t) }
                Gemm.sgemm(m: t, n: hd, k: t, a: phj, lda: t, b: qh + off + 2 * e, ldb: 3 * e, transB: false,
                           c: cx + bi * t * e + head * hd, ldc: e)
            }
        }
        quantize(proj.input, ctx, a2, rows: rows, cols: e, keep: masks["proj"])
        proj.forward(a2.data, rows: rows, into: x1.data)
        Ops.add(x1.data, x0.data, count: rows * e)
        norm2.forward(x1.data, rows: rows, into: h2.data)
        quantize(fc1.input, h2, a3, rows: rows, cols: e, keep: masks["fc1"])
        fc1.forward(a3.data, rows: rows, into: f.data)
        Ops.gelu(f.data, g.data, count: rows * hidden)
        if let m = hiddenMultiplier { Ops.scaleColumns(g.data, rows: rows, by: m.data, cols: hidden) }
        quantize(fc2.input, g, a4, rows: rows, cols: hidden, keep: masks["fc2"])
        fc2.forward(a4.data, rows: rows, into: x2.data)
        Ops.add(x2.data, x1.data, count: rows * e)
    }

    /// The backward from dL/dx2 in ``dx2``: every linear op's ``ReconstructedLinear/weightGradient``,
    /// and dL/d(log Δ) of each learned quantizer, keyed by the quantizer's identity and group.
    func backward(images b: Int, masks: [String: [UInt8]] = [:]) -> [ObjectIdentifier: [Double]] {
        let t = tokens, e = dim, rows = b * t, hd = headDim, nh = heads
        let scale = 1 / Float(hd).squareRoot()
        var steps: [ObjectIdentifier: [Double]] = [:]
        func add(_ quant: LearnedQuantizer?, _ group: Int, _ value: Double) {
            guard let quant, quant.learns else { return }
            steps[ObjectIdentifier(quant), default: [Double](repeating: 0, count: quant.searched.count)][group] += value
        }
        // MLP.
        fc2.backward(dx2.data, a: a4.data, rows: rows, into: dHidden.data)
        add(fc2.input, 0, unquantize(fc2.input, dHidden, x: g, rows: rows, cols: hidden, keep: masks["fc2"]))
        if let m = hiddenMultiplier { Ops.scaleColumns(dHidden.data, rows: rows, by: m.data, cols: hidden) }
        Ops.geluBackward(dHidden.data, f: f.data, into: dHidden.data, count: rows * hidden)
        fc1.backward(dHidden.data, a: a3.data, rows: rows, into: dE.data)
        add(fc1.input, 0, unquantize(fc1.input, dE, x: h2, rows: rows, cols: e, keep: masks["fc1"]))
        dx1.data.update(from: dx2.data, count: rows * e)
        norm2.backward(dE.data, x: x1.data, rows: rows, accumulateInto: dx1.data)
        // Attention.
        proj.backward(dx1.data, a: a2.data, rows: rows, into: dCtx.data)
        add(proj.input, 0, unquantize(proj.input, dCtx, x: ctx, rows: rows, cols: e, keep: masks["proj"]))
        let qo = qkvOut.data, qh = qkvHat.data, pp = p.data, ph = pHat.data, dc = dCtx.data, dq = dQKV.data, dp = dP.data
        var partial = [Double](repeating: 0, count: b * nh * 3)
        partial.withUnsafeMutableBufferPointer { part in
            let part = part.baseAddress!
            Parallel.forChunks(b * nh) { range in
                for j in range {
                    let bi = j / nh, head = j % nh, off = bi * t * 3 * e + head * hd
                    let pj = pp + j * t * t, phj = ph + j * t * t, dpj = dp + j * t * t, dcj = dc + bi * t * e + head * hd
                    // dP̂ = dC·V̂ᵀ, dV̂ = P̂ᵀ·dC; the probabilities' grid is passed straight through.
                    Gemm.sgemm(m: t, n: t, k: hd, a: dcj, lda: e, b: qh + off + 2 * e, ldb: 3 * e, transB: true, c: dpj, ldc: t)
                    Gemm.sgemmTransA(m: t, n: hd, k: t, a: phj, lda: t, b: dcj, ldb: e, c: dq + off + 2 * e, ldc: 3 * e)
                    if let probs { _ = probs.backward(dpj, x: pj, rows: t, cols: t, ld: t, group: probs.searched.index(head: head)) }
                    FloatAttention.softmaxBackward(p: pj, dpj, rows: t, n: t)
                    Gemm.sgemm(m: t, n: hd, k: t, alpha: scale, a: dpj, lda: t, b: qh + off + e, ldb: 3 * e, transB: false, c: dq + off, ldc: 3 * e)
                    Gemm.sgemmTransA(m: t, n: hd, k: t, alpha: scale, a: dpj, lda: t, b: qh + off, ldb: 3 * e, c: dq + off + e, ldc: 3 * e)
                    for (slot, quant) in [q, k, v].enumerated() {
                        guard let quant else { continue }
                        part[j * 3 + slot] = quant.backward(dq + off + slot * e, x: qo + off + slot * e, rows: t, cols: hd, ld: 3 * e,
                                                            group: quant.searched.index(head: head))
                    }
                }
            }
        }
        for j in 0..<(b * nh) {
            for (slot, quant) in [q, k, v].enumerated() { add(quant, quant?.searched.index(head: j % nh) ?? 0, partial[j * 3 + slot]) }
        }
        qkv.backward(dq, a: a1.data, rows: rows, into: qkv.input?.learns == true ? dE.data : nil)
        if qkv.input?.learns == true { add(qkv.input, 0, unquantize(qkv.input, dE, x: h1, rows: rows, cols: e, keep: masks["qkv"])) }
        return steps
    }
}
