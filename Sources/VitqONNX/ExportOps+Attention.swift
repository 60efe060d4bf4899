import Foundation
import VitqQuant

/// Attention over [batch, heads, tokens, head_dim] operands, float or quantized.
extension ExportOps {
    /// softmax(scale·Q·Kᵀ (+ `scoreBias`, Swin's relative position bias and shift mask))·V for the
    /// block's operands [batch, heads, tokens, headDim], as the block's attention quantizers say.
    func attend(_ qh: String, _ kh: String, _ vh: String, heads: Int, headDim: Int, block: String, scoreBias: ((String) -> String)? = nil) throws -> String {
        let scale = 1 / Float(headDim).squareRoot()
        func biased(_ s: String) -> String { scoreBias?(s) ?? s }
        guard let a = attention[block] else {
            let kt = b.op("Transpose", [kh], block + ".k_t", [Attr.ints("perm", [0, 1, 3, 2])])
            let s = b.op("Mul", [b.op("MatMul", [qh, kt], block + ".qk"), b.scalar(block + ".scale", scale)], block + ".scores")
            return b.op("MatMul", [b.op("Softmax", [biased(s)], block + ".softmax", [Attr.int("axis", -1)]), vh], block + ".matmul2")
        }
        if format == .qdq { return try qdqAttend(qh, kh, vh, a, heads: heads, scale: scale, block: block, scoreBias: biased) }
        func idx(_ t: TensorQuant, _ h: Int) -> Int { t.granularity == .perHead ? h : 0 }
        let qc = codes(qh, a.q, heads: heads, name: block + ".q")
        let kc = codes(b.op("Transpose", [kh], block + ".k_t", [Attr.ints("perm", [0, 1, 3, 2])]), a.k, heads: heads, name: block + ".k")
        let vc = codes(vh, a.v, heads: heads, name: block + ".v")
        // S = fl(fl(Δq·Δk)·scale) · (q̂ − zq)(k̂ − zk)ᵀ, per head.
        let sScale = (0..<heads).map { a.q.scales[idx(a.q, $0)] * a.k.scales[idx(a.k, $0)] * scale }
        let s = b.op("Mul", [q.cast(integerProduct(qc, kc, block + ".qk_acc"), to: .float, block + ".qk_accf"), q.perHead(block + ".score_scale", sScale)], block + ".scores")
        let probs = b.op("Softmax", [biased(s)], block + ".softmax", [Attr.int("axis", -1)])
        let vScales = (0..<heads).map { a.v.scales[idx(a.v, $0)] }
        switch a.probs {
        case let .uniform(t):
            let pc = codes(probs, t, heads: heads, name: block + ".p")
            let pv = (0..<heads).map { t.scales[a.probs.index(head: $0)] * vScales[$0] }
            return b.op("Mul", [q.cast(integerProduct(pc, vc, block + ".pv_acc"), to: .float, block + ".pv_accf"), q.perHead(block + ".ctx_scale", pv)], block + ".matmul2")
        case let .twin(ts):
            let per = (0..<heads).map { ts[a.probs.index(head: $0)] }
            guard Set(per.map(\.maxMagnitude)).count == 1 else { throw ExportError("\(block): twin softmax quantizers of different widths per head") }
            let parts = q.twinParts(probs, kind: .softmax, inv1: q.perHead(block + ".p_inverse1", per.map { 1 / $0.delta1 }),
                                    inv2: q.perHead(block + ".p_inverse2", per.map { 1 / $0.delta2 }), qmax: per[0].maxMagnitude, name: block + ".p")
            let pow2 = b.doubles(block + ".p_pow2", per.map { Double(sign: .plus, exponent: $0.shift, significand: 1) }, dims: [1, heads, 1, 1])
            let acc = q.twinCombine(lo: integerProduct((parts.lo, false), vc, block + ".pv_acc_lo"), hi: integerProduct((parts.hi, false), vc, block + ".pv_acc_hi"),
                                    pow2: pow2, name: block + ".pv_accf")
            let pv = (0..<heads).map { per[$0].delta1 * vScales[$0] }
            return b.op("Mul", [acc, q.perHead(block + ".ctx_scale", pv)], block + ".matmul2")
        case .perToken:
            throw ExportError("\(block): per-token softmax probabilities are not an attention quantizer vitq writes")
        }
    }

    /// An attention operand's codes: int8/uint8 when its grid has no zero point, else the
    /// centred integers q − z as int32 (MatMulInteger's zero points cannot vary per head).
    func codes(_ x: String, _ t: TensorQuant, heads: Int, name: String) -> (value: String, int32: Bool) {
        let per = (0..<heads).map { t.granularity == .perHead ? $0 : 0 }
        let inverse = q.perHead(name + "_inverse", per.map { 1 / t.scales[$0] })
        guard t.isAffine else { return (q.quantize(x, inverse: inverse, zero: nil, scheme: t.scheme, name: name), false) }
        let z = q.perHead(name + "_zero", per.map { Float(t.zeroPoints[$0]) })
        var v = b.op("Round", [b.op("Mul", [x, inverse], name + "_scaled")], name + "_rounded")
        v = b.op("Clip", [b.op("Add", [v, z], name + "_shifted"), b.scalar(name + "_qmin", Float(t.scheme.qmin)), b.scalar(name + "_qmax", Float(t.scheme.qmax))], name + "_clipped")
        return (q.cast(b.op("Sub", [v, z], name + "_centred"), to: .int32, name + "_q"), true)
    }

    /// The exact product of two code tensors: MatMulInteger, or an int32 MatMul of centred codes.
    func integerProduct(_ a: (value: String, int32: Bool), _ c: (value: String, int32: Bool), _ name: String) -> String {
        if !a.int32 && !c.int32 { return b.op("MatMulInteger", [a.value, c.value], name) }
        let x = a.int32 ? a.value : q.cast(a.value, to: .int32, name + "_a32")
        let y = c.int32 ? c.value : q.cast(c.value, to: .int32, name + "_b32")
        return b.op("MatMul", [x, y], name)
    }
}
