import COpenBLAS

extension Gemm {
    /// One single-threaded product with the first operand transposed: C[m,n] = alpha · A[k,m]ᵀ · B[k,n]
    /// + beta · C, row-major (backward passes: dV = Pᵀ·dCtx, dK = dSᵀ·Q).
    public static func sgemmTransA(m: Int, n: Int, k: Int, alpha: Float = 1,
                                   a: UnsafePointer<Float>, lda: Int,
                                   b: UnsafePointer<Float>, ldb: Int,
                                   beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        _ = singleThreadedBLAS
        if m == 0 || n == 0 { return }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), alpha,
                    a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
