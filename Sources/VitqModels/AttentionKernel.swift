import VitqTensor

/// One attention head of one image: ctx = softmax(scale · q·kᵀ)·v, in float or quantized.
public protocol AttentionKernel: Sendable {
    /// Per-thread scratch for ``attend``; nil when none is needed.
    func makeScratch(tokens: Int, headDim: Int) -> AnyObject?
    /// Writes the probabilities [t, t] to `probs` and ctx [t, headDim] (row stride ldc) for head `head`.
    /// q, k and v are [t, headDim] at row stride `ld`. `scoreBias` [t, t], when given, is added to
    /// the scaled scores before the softmax (Swin's relative position bias and shift mask).
    func attend(head: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ld: Int,
                tokens t: Int, headDim: Int, scale: Float, scoreBias: UnsafePointer<Float>?, probs: UnsafeMutablePointer<Float>,
                ctx: UnsafeMutablePointer<Float>, ldc: Int, scratch: AnyObject?)
}

extension Ops {
    /// scores[t, t] += bias[t, t] when a bias is given.
    public static func addScoreBias(_ scores: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>?, tokens t: Int) {
        guard let bias else { return }
        for i in 0..<(t * t) { scores[i] += bias[i] }
    }
}

/// fp32 attention: two sgemms and a softmax in between.
public struct FloatAttention: AttentionKernel {
    public init() {}
    public func makeScratch(tokens: Int, headDim: Int) -> AnyObject? { nil }
    public func attend(head: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ld: Int,
                       tokens t: Int, headDim: Int, scale: Float, scoreBias: UnsafePointer<Float>?, probs: UnsafeMutablePointer<Float>,
                       ctx: UnsafeMutablePointer<Float>, ldc: Int, scratch: AnyObject?) {
        Gemm.sgemm(m: t, n: t, k: headDim, alpha: scale, a: q, lda: ld, b: k, ldb: ld, transB: true, c: probs, ldc: t)
        Ops.addScoreBias(probs, scoreBias, tokens: t)
        Ops.softmaxSerial(probs, rows: t, n: t)
        Gemm.sgemm(m: t, n: headDim, k: t, a: probs, lda: t, b: v, ldb: ld, transB: false, c: ctx, ldc: ldc)
    }
}

extension FloatAttention {
    // The backward of one (image, head) of attend, in three steps (an additive score bias does not change the gradients).

    /// forward:  S[t, t] = scale · Q·Kᵀ;  P = softmax_rows(S);  C[t, hd] = P·V
    /// backward, first half (given P and dC): dP[t, t] = dC·Vᵀ and dV[t, hd] = Pᵀ·dC.
    /// dC, Q, K, V, dV are [t, hd] at row strides ldc / ld / ld / ld / ld.
    static func contextBackward(p: UnsafePointer<Float>, dc: UnsafePointer<Float>, ldc: Int,
                                v: UnsafePointer<Float>, dv: UnsafeMutablePointer<Float>, ld: Int,
                                tokens t: Int, headDim hd: Int, dp: UnsafeMutablePointer<Float>) {
        Gemm.sgemm(m: t, n: t, k: hd, a: dc, lda: ldc, b: v, ldb: ld, transB: true, c: dp, ldc: t)
        Gemm.sgemmTransA(m: t, n: hd, k: t, a: p, lda: t, b: dc, ldb: ldc, c: dv, ldc: ld)
    }

    /// backward, softmax: dS = P ⊙ (dP − rowsum(dP ⊙ P)), in place on `d` ([rows, n]: dP in, dS out).
    public static func softmaxBackward(p: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
        for r in 0..<rows {
            let pr = p + r * n, dr = d + r * n
            var s = 0.0
            for j in 0..<n { s += Double(pr[j]) * Double(dr[j]) }
            for j in 0..<n { dr[j] = Float(Double(pr[j]) * (Double(dr[j]) - s)) }
        }
    }

    /// backward, scores (scale folded in): dQ = scale · dS·K and dK = scale · dSᵀ·Q.
    static func scoresBackward(ds: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                               dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, ld: Int,
                               tokens t: Int, headDim hd: Int, scale: Float) {
        Gemm.sgemm(m: t, n: hd, k: t, alpha: scale, a: ds, lda: t, b: k, ldb: ld, transB: false, c: dq, ldc: ld)
        Gemm.sgemmTransA(m: t, n: hd, k: t, alpha: scale, a: ds, lda: t, b: q, ldb: ld, c: dk, ldc: ld)
    }
}
