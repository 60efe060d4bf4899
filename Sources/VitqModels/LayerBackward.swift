import Foundation
import VitqTensor

/// Input-gradient backward passes of the fp32 layers, each stated beside the forward it
/// differentiates (llm.c style). Weight gradients are not computed. Reductions run in Double;
/// storage is float. Row-wise work is split across ``Parallel/threads``.
enum LayerBackward {
    // MARK: Linear

    /// forward:  y[rows, out] = x[rows, in] · W[out, in]ᵀ + b
    /// backward: dx[rows, in] = dy[rows, out] · W[out, in]
    static func linear(_ dy: UnsafePointer<Float>, rows: Int, _ op: Linear, into dx: UnsafeMutablePointer<Float>) {
        let o = op.outFeatures, i = op.inFeatures, w = op.weight.data
        Gemm.splitRows(rows) { r in
            Gemm.sgemm(m: r.count, n: i, k: o, a: dy + r.lowerBound * o, lda: o, b: w, ldb: i, transB: false,
                       c: dx + r.lowerBound * i, ldc: i)
        }
    }

    // MARK: LayerNorm

    /// forward:  y[r, :] = γ ⊙ x̂ + β with x̂ = (x[r, :] − μ_r) · rstd_r, rstd_r = 1/√(var_r + eps)
    /// backward: dx[r, :] += rstd_r · (d̂ − mean(d̂) − x̂ · mean(d̂ ⊙ x̂)), d̂ = dy[r, :] ⊙ γ
    /// `x` is the forward input [rows, dim]; the result is added to `dx` (the residual stream's gradient).
    /// Rows whose dy is all zero are skipped.
    static func layerNorm(_ dy: UnsafePointer<Float>, x: UnsafePointer<Float>, _ ln: LayerNorm, rows: Int,
                          accumulateInto dx: UnsafeMutablePointer<Float>) {
        let dim = ln.weight.count, gamma = ln.weight.data, eps = Double(ln.eps)
        Parallel.forChunks(rows, minChunk: 16) { range in
            var xhat = [Double](repeating: 0, count: dim), dhat = [Double](repeating: 0, count: dim)
            for r in range {
                let xr = x + r * dim, dyr = dy + r * dim, dxr = dx + r * dim
                if !(0..<dim).contains(where: { dyr[$0] != 0 }) { continue }
                var mean = 0.0
                for j in 0..<dim { mean += Double(xr[j]) }
                mean /= Double(dim)
                var variance = 0.0
                for j in 0..<dim { let d = Double(xr[j]) - mean; variance += d * d }
                let rstd = 1 / (variance / Double(dim) + eps).squareRoot()
                var sumD = 0.0, sumDX = 0.0
                for j in 0..<dim {
                    xhat[j] = (Double(xr[j]) - mean) * rstd
                    dhat[j] = Double(dyr[j]) * Double(gamma[j])
                    sumD += dhat[j]; sumDX += dhat[j] * xhat[j]
                }
                let meanD = sumD / Double(dim), meanDX = sumDX / Double(dim)
                for j in 0..<dim { dxr[j] += Float(rstd * (dhat[j] - meanD - xhat[j] * meanDX)) }
            }
        }
    }

    // MARK: GELU (exact erf)

    /// forward:  g = f · Φ(f), Φ(f) = ½(1 + erf(f/√2))
    /// backward: df = dg · (Φ(f) + f · φ(f)), φ(f) = e^(−f²/2)/√(2π). `dg` and `df` may alias.
    static func gelu(_ dg: UnsafePointer<Float>, f: UnsafePointer<Float>, into df: UnsafeMutablePointer<Float>, count: Int) {
        let invSqrt2: Float = 0.70710678118654752, invSqrt2Pi: Float = 0.39894228040143268
        Parallel.forChunks(count, minChunk: 4096) { r in
            for j in r {
                let v = f[j]
                let cdf = 0.5 * (1 + erf(v * invSqrt2)), pdf = exp(-0.5 * v * v) * invSqrt2Pi
                df[j] = dg[j] * (cdf + v * pdf)
            }
        }
    }

    // MARK: Attention, one (image, head)

    /// forward:  S[t, t] = scale · Q·Kᵀ;  P = softmax_rows(S);  C[t, hd] = P·V
    /// backward, first half (given P and dC): dP[t, t] = dC·Vᵀ and dV[t, hd] = Pᵀ·dC.
    /// dC, Q, K, V, dV are [t, hd] at row strides ldc / ld / ld / ld / ld.
    static func attentionContext(p: UnsafePointer<Float>, dc: UnsafePointer<Float>, ldc: Int,
                                 v: UnsafePointer<Float>, dv: UnsafeMutablePointer<Float>, ld: Int,
                                 tokens t: Int, headDim hd: Int, dp: UnsafeMutablePointer<Float>) {
        Gemm.sgemm(m: t, n: t, k: hd, a: dc, lda: ldc, b: v, ldb: ld, transB: true, c: dp, ldc: t)
        Gemm.sgemmTransA(m: t, n: hd, k: t, a: p, lda: t, b: dc, ldb: ldc, c: dv, ldc: ld)
    }

    /// backward, softmax: dS = P ⊙ (dP − rowsum(dP ⊙ P)), in place on `d` ([rows, n]: dP in, dS out).
    static func softmax(p: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
        for r in 0..<rows {
            let pr = p + r * n, dr = d + r * n
            var s = 0.0
            for j in 0..<n { s += Double(pr[j]) * Double(dr[j]) }
            for j in 0..<n { dr[j] = Float(Double(pr[j]) * (Double(dr[j]) - s)) }
        }
    }

    /// backward, scores (scale folded in): dQ = scale · dS·K and dK = scale · dSᵀ·Q.
    static func attentionScores(ds: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                                dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, ld: Int,
                                tokens t: Int, headDim hd: Int, scale: Float) {
        Gemm.sgemm(m: t, n: hd, k: t, alpha: scale, a: ds, lda: t, b: k, ldb: ld, transB: false, c: dq, ldc: ld)
        Gemm.sgemmTransA(m: t, n: hd, k: t, alpha: scale, a: ds, lda: t, b: q, ldb: ld, c: dk, ldc: ld)
    }
}
