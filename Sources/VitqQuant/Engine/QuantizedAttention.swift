import CVitqKernels
import VitqModels
import VitqTensor

/// The quantization of one block's two attention products: Q·Kᵀ (a = Q, b = K) and
/// probabilities·V (a = P, b = V). Each operand has one scale per head (or one per tensor).
/// The probabilities may be twin-quantized (PTQ4ViT), one twin quantizer per head.
public struct AttentionQuant: Equatable, Sendable {
    public var q: TensorQuant, k: TensorQuant, probs: OperandQuant, v: TensorQuant
    public init(q: TensorQuant, k: TensorQuant, probs: OperandQuant, v: TensorQuant) {
        self.q = q; self.k = k; self.probs = probs; self.v = v
    }
    /// Index into a per-head (or per-tensor) scale list.
    @inline(__always) static func index(_ t: TensorQuant, _ head: Int) -> Int { t.granularity == .perHead ? head : 0 }
}

/// Attention in integers: Q·Kᵀ and P·V are exact int32 GEMMs on quantized operands; the scale
/// 1/√d, the softmax and the dequantization stay in float.
public struct Int8Attention: AttentionKernel {
    public let quant: AttentionQuant
    public init(quant: AttentionQuant) { self.quant = quant }

    final class Scratch {
        let qa: AlignedBuffer, kb: AlignedBuffer, pa: AlignedBuffer, vb: AlignedBuffer
        let colScale: AlignedBuffer
        /// Twin P·V: the second packed A and the two int32 accumulators.
        let pa2: AlignedBuffer, acc: AlignedBuffer
        init(t: Int, hd: Int) {
            qa = AlignedBuffer(byteCount: Int(vitq_qgemm_packed_a_size(Int64(t), Int64(hd))) * 4)
            kb = AlignedBuffer(byteCount: Int(vitq_qgemm_packed_b_size(Int64(t), Int64(hd))) * 2)
            pa = AlignedBuffer(byteCount: Int(vitq_qgemm_packed_a_size(Int64(t), Int64(t))) * 4)
            pa2 = AlignedBuffer(byteCount: Int(vitq_qgemm_packed_a_size(Int64(t), Int64(t))) * 4)
            acc = AlignedBuffer(byteCount: 2 * t * hd * 4)
            vb = AlignedBuffer(byteCount: Int(vitq_qgemm_packed_b_size(Int64(hd), Int64(t))) * 2)
            colScale = AlignedBuffer(byteCount: max(t, hd) * 4)
        }
    }

    public func makeScratch(tokens: Int, headDim: Int) -> AnyObject? { Scratch(t: tokens, hd: headDim) }

    public func attend(head: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ld: Int,
                       tokens t: Int, headDim hd: Int, scale: Float, scoreBias: UnsafePointer<Float>?, probs: UnsafeMutablePointer<Float>,
                       ctx: UnsafeMutablePointer<Float>, ldc: Int, scratch: AnyObject?) {
        let s = scratch as! Scratch
        let qq = quant.q, kq = quant.k, pq = quant.probs, vq = quant.v
        let iq = AttentionQuant.index(qq, head), ik = AttentionQuant.index(kq, head)
        let ip = pq.index(head: head), iv = AttentionQuant.index(vq, head)
        let cs = s.colScale.pointer(Float.self)

        // S = (Δq·Δk·scale) · (q̂ − zq)(k̂ − zk)ᵀ
        vitq_qgemm_quantize_pack_a(q, Int64(ld), Int64(t), Int64(hd), qq.scales[iq], qq.zeroPoints[iq], qq.scheme.qmin, qq.scheme.qmax, s.qa.pointer(Int32.self))
        vitq_qgemm_quantize_pack_b(k, Int64(ld), Int64(t), Int64(hd), 0, kq.scales[ik], kq.zeroPoints[ik], kq.scheme.qmin, kq.scheme.qmax, s.kb.pointer(Int16.self))
        cs.update(repeating: qq.scales[iq] * kq.scales[ik] * scale, count: t)
        var out = vitq_qgemm_output()
        out.f = probs; out.ldf = Int64(t); out.col_scale = UnsafePointer(cs)
        vitq_qgemm(s.qa.pointer(Int32.self), s.kb.pointer(Int16.self), Int64(t), Int64(t), Int64(hd), &out)
        Ops.addScoreBias(probs, scoreBias, tokens: t)

        // ctx = (Δp·Δv) · (p̂ − zp)(v̂ − zv), with V packed from its transpose.
        vitq_qgemm_quantize_pack_b(v, Int64(ld), Int64(hd), Int64(t), 1, vq.scales[iv], vq.zeroPoints[iv], vq.scheme.qmin, vq.scheme.qmax, s.vb.pointer(Int16.self))
        cs.update(repeating: pq.step(ip) * vq.scales[iv], count: hd)
        if case let .twin(tq) = pq {
            Ops.softmaxSerial(probs, rows: t, n: t)
            let acc = s.acc.pointer(Int32.self)
            TwinGemm.runPacked(probs, lda: t, m: t, k: t, quant: tq[ip], packedB: s.vb.pointer(Int16.self), n: hd,
                               packedLo: s.pa.pointer(Int32.self), packedHi: s.pa2.pointer(Int32.self), accLo: acc, accHi: acc + t * hd,
                               colScale: cs, bias: nil, into: ctx, ldy: ldc)
            return
        }
        let pu = pq.uniform
        vitq_softmax_quantize_pack_a(probs, Int64(t), Int64(t), Int64(t), pu.scales[ip], pu.zeroPoints[ip], pu.scheme.qmin, pu.scheme.qmax, s.pa.pointer(Int32.self))
        out = vitq_qgemm_output()
        out.f = ctx; out.ldf = Int64(ldc); out.col_scale = UnsafePointer(cs)
        vitq_qgemm(s.pa.pointer(Int32.self), s.vb.pointer(Int16.self), Int64(t), Int64(hd), Int64(t), &out)
    }
}

/// The same attention without the packed kernel: both products as exact integer sums in
/// double precision (``IntegerReference``) with the engine's epilogue, the float softmax in
/// between. The reference the integer engine is checked against, bit for bit.
public struct FakeQuantAttention: AttentionKernel {
    public let quant: AttentionQuant
    public init(quant: AttentionQuant) { self.quant = quant }

    final class Scratch {
        let a: UnsafeMutablePointer<Double>, b: UnsafeMutablePointer<Double>
        init(t: Int, hd: Int) { a = .allocate(capacity: t * max(t, hd)); b = .allocate(capacity: t * max(t, hd)) }
        deinit { a.deallocate(); b.deallocate() }
    }

    public func makeScratch(tokens: Int, headDim: Int) -> AnyObject? { Scratch(t: tokens, hd: headDim) }

    public func attend(head: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ld: Int,
                       tokens t: Int, headDim hd: Int, scale: Float, scoreBias: UnsafePointer<Float>?, probs: UnsafeMutablePointer<Float>,
                       ctx: UnsafeMutablePointer<Float>, ldc: Int, scratch: AnyObject?) {
        let s = scratch as! Scratch
        let iq = AttentionQuant.index(quant.q, head), ik = AttentionQuant.index(quant.k, head)
        let ip = quant.probs.index(head: head), iv = AttentionQuant.index(quant.v, head)
        IntegerReference.quantize(q, rows: t, cols: hd, ld: ld, .uniform(quant.q), index: iq, into: s.a)
        IntegerReference.quantize(k, rows: t, cols: hd, ld: ld, .uniform(quant.k), index: ik, into: s.b)
        let sqk = quant.q.scales[iq] * quant.k.scales[ik] * scale
        IntegerReference.product(s.a, s.b, m: t, n: t, k: hd, colScale: { _ in sqk }, bias: nil, into: probs, ldy: t)
        Ops.addScoreBias(probs, scoreBias, tokens: t)
        Ops.softmaxSerial(probs, rows: t, n: t)
        IntegerReference.quantize(probs, rows: t, cols: t, ld: t, quant.probs, index: ip, into: s.a)
        // V [t, hd] as B [hd, t]: its transpose.
        IntegerReference.quantize(v, rows: t, cols: hd, ld: ld, .uniform(quant.v), index: iv, into: s.b, transposed: true)
        let spv = quant.probs.step(ip) * quant.v.scales[iv]
        IntegerReference.product(s.a, s.b, m: t, n: hd, k: t, colScale: { _ in spv }, bias: nil, into: ctx, ldy: ldc)
    }
}
