import COpenBLAS

/// The nuclear norm ‖A‖_* (the sum of singular values) of a row-major m × n float matrix, the
/// sensitivity of Liu et al.'s mixed precision (ALGORITHMS.md §2).
///
/// With k = min(m, n), the singular values are the square roots of the eigenvalues of the k × k
/// Gram matrix (AᵀA or AAᵀ). The Gram matrix is summed in double, in a fixed order, by this
/// code; its eigenvalues come from LAPACK's `dsyev` (values only) on one thread, and negative
/// round-off below zero counts as 0. Double precision keeps the relative error near 1e-12 of
/// the largest singular value; the tests check it against numpy's `norm(A, 'nuc')`.
public enum NuclearNorm {
    /// ‖A‖_* of `a` (m × n, row-major), or nil when LAPACK reports a failure.
    public static func of(_ a: UnsafePointer<Float>, rows m: Int, cols n: Int) -> Double? {
        guard m > 0, n > 0 else { return 0 }
        _ = Gemm.singleThreadedBLAS
        let k = min(m, n)
        var g = [Double](repeating: 0, count: k * k)
        if n <= m {
            // AᵀA: g[i][j] = Σ_r a[r][i]·a[r][j], row by row.
            var row = [Double](repeating: 0, count: n)
            for r in 0..<m {
                for i in 0..<n { row[i] = Double(a[r * n + i]) }
                for i in 0..<n {
                    let x = row[i]
                    for j in i..<n { g[i * k + j] += x * row[j] }
                }
            }
        } else {
            // AAᵀ: g[i][j] = Σ_c a[i][c]·a[j][c].
            for i in 0..<m {
                for j in i..<m {
                    var s = 0.0
                    for c in 0..<n { s += Double(a[i * n + c]) * Double(a[j * n + c]) }
                    g[i * k + j] = s
                }
            }
        }
        // The upper triangle of the row-major matrix is LAPACK's (column-major) lower one.
        var nn = Int32(k), lda = Int32(k), info: Int32 = 0, lwork: Int32 = -1, query = 0.0
        var w = [Double](repeating: 0, count: k)
        dsyev_("N", "L", &nn, &g, &lda, &w, &query, &lwork, &info, 1, 1)
        guard info == 0 else { return nil }
        lwork = Int32(max(1, Int(query)))
        var work = [Double](repeating: 0, count: Int(lwork))
        dsyev_("N", "L", &nn, &g, &lda, &w, &work, &lwork, &info, 1, 1)
        guard info == 0 else { return nil }
        return w.reduce(0.0) { $0 + max(0, $1).squareRoot() }
    }
}
