import COpenBLAS
import Foundation

/// fp32 matrix products through OpenBLAS `cblas_sgemm`, parallelised by vitq itself.
///
/// OpenBLAS is set to one thread on first use; ``linear(_:rows:weight:outFeatures:inFeatures:bias:into:)``
/// splits the rows across ``Parallel/threads`` and ``batched(_:_:)`` runs independent products
/// side by side. Every product the model makes goes through here, so ``GemmRecorder`` can list
/// them for `vitq bench fp32`, which times the same products alone.
public enum Gemm {
    static let singleThreadedBLAS: Void = { openblas_set_num_threads(1) }()

    nonisolated(unsafe) static var recorder: GemmRecorder?

    /// One single-threaded product: C[m,n] = alpha · A[m,k] · op(B) + beta · C, row-major, where
    /// op(B) = Bᵀ of a [n,k] matrix when `transB`, else B of a [k,n] matrix.
    @inline(__always)
    public static func sgemm(m: Int, n: Int, k: Int, alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int, transB: Bool,
                             beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
        _ = singleThreadedBLAS
        if m == 0 || n == 0 { return }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb),
                    beta, c, Int32(ldc))
    }

    /// One single-threaded double product C[m,n] = A[m,k] · B[n,k]ᵀ, row-major. Used where sums
    /// must be exact (integer-valued operands; exact while every partial sum stays below 2^53).
    public static func dgemmNT(m: Int, n: Int, k: Int, a: UnsafePointer<Double>, lda: Int,
                               b: UnsafePointer<Double>, ldb: Int, c: UnsafeMutablePointer<Double>, ldc: Int) {
        _ = singleThreadedBLAS
        if m == 0 || n == 0 { return }
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), 0, c, Int32(ldc))
    }

    /// A fully connected layer, y[rows, out] = x[rows, in] · Wᵀ + bias with W stored [out, in]
    /// (PyTorch's layout). Rows are split across threads.
    public static func linear(_ x: UnsafePointer<Float>, rows: Int, weight: UnsafePointer<Float>,
                              outFeatures: Int, inFeatures: Int, bias: UnsafePointer<Float>?,
                              into y: UnsafeMutablePointer<Float>) {
        recorder?.record(GemmShape(m: rows, n: outFeatures, k: inFeatures, transB: true, batch: 1))
        splitRows(rows) { r in
            sgemm(m: r.count, n: outFeatures, k: inFeatures, a: x + r.lowerBound * inFeatures, lda: inFeatures,
                  b: weight, ldb: inFeatures, transB: true, c: y + r.lowerBound * outFeatures, ldc: outFeatures)
            if let bias {
                Ops.addBias(y + r.lowerBound * outFeatures, bias, rows: r.count, n: outFeatures)
            }
        }
    }

    /// The rows per BLAS call in reproducible mode: about a sixteenth of them, a multiple of 16,
    /// at least 32. It depends on `rows` alone, so each row lands in the same place of the same
    /// call, and gets the same bits, on any number of threads (OpenBLAS computes edge tiles with
    /// other kernels, and where they fall depends on how the rows are split).
    public static func rowBlock(_ rows: Int) -> Int {
        max(32, ((rows + 15) / 16 + 15) / 16 * 16)
    }

    nonisolated(unsafe) private static var reproducibleDepth = 0
    private static let reproducibleLock = NSLock()

    /// Runs `body` with products split into ``rowBlock(_:)`` blocks instead of one chunk per
    /// thread: slower by a few percent, but the same bits on any thread count. Calibration
    /// (stage 1, smoothing maxima) runs in it, since its tensors decide the quantized file;
    /// inference does not need it.
    public static func reproducible<T>(_ body: () throws -> T) rethrows -> T {
        reproducibleLock.withLock { reproducibleDepth += 1 }
        defer { reproducibleLock.withLock { reproducibleDepth -= 1 } }
        return try body()
    }

    /// Splits `rows` across threads: fixed blocks in reproducible mode, else one chunk per thread.
    public static func splitRows(_ rows: Int, _ body: (Range<Int>) -> Void) {
        if reproducibleLock.withLock({ reproducibleDepth > 0 }) {
            Parallel.forBlocks(rows, block: rowBlock(rows), body)
        } else {
            Parallel.forChunks(rows, minChunk: 16, body)
        }
    }

    /// Declares `shape.batch` independent single-threaded products that the caller runs in a
    /// parallel loop of its own (e.g. per image and head, fused with a softmax), so that
    /// ``GemmRecorder`` lists them.
    public static func recordBatched(_ shape: GemmShape) {
        recorder?.record(shape)
    }

    /// Runs the products `shapes` alone on scratch operands, threaded as the model threads them:
    /// batch-1 products split by rows, batched ones one product per task. For `vitq bench fp32`.
    public static func replay(_ shapes: [GemmShape], scratch: GemmScratch) {
        for s in shapes {
            if s.batch == 1 {
                Parallel.forChunks(s.m, minChunk: 16) { r in
                    sgemm(m: r.count, n: s.n, k: s.k, a: scratch.a + r.lowerBound * s.k, lda: s.k,
                          b: scratch.b, ldb: s.transB ? s.k : s.n, transB: s.transB,
                          c: scratch.c + r.lowerBound * s.n, ldc: s.n)
                }
            } else {
                Parallel.forEach(s.batch) { i in
                    sgemm(m: s.m, n: s.n, k: s.k, a: scratch.a + i * s.m * s.k, lda: s.k,
                          b: scratch.b + i * s.n * s.k, ldb: s.transB ? s.k : s.n, transB: s.transB,
                          c: scratch.c + i * s.m * s.n, ldc: s.n)
                }
            }
        }
    }
}

/// The shape of one product (or of `batch` independent products of the same shape).
public struct GemmShape: Hashable, Sendable, Codable {
    public var m: Int, n: Int, k: Int
    public var transB: Bool
    public var batch: Int
    public init(m: Int, n: Int, k: Int, transB: Bool, batch: Int) {
        self.m = m; self.n = n; self.k = k; self.transB = transB; self.batch = batch
    }
    /// Multiply-add count times two.
    public var flops: Double { 2.0 * Double(m) * Double(n) * Double(k) * Double(batch) }
}

/// Operand buffers large enough for a list of products (for ``Gemm/replay(_:scratch:)``). Each
/// product of a batch gets operands of its own, as in the model, so none is replayed cache-hot.
public final class GemmScratch {
    let a: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>, c: UnsafeMutablePointer<Float>
    private let tensors: [Tensor]

    public init(for shapes: [GemmShape]) {
        let na = shapes.map { $0.m * $0.k * $0.batch }.max() ?? 1
        let nb = shapes.map { $0.n * $0.k * $0.batch }.max() ?? 1
        let nc = shapes.map { $0.m * $0.n * $0.batch }.max() ?? 1
        tensors = [Tensor(zeros: [na]), Tensor(zeros: [nb]), Tensor(zeros: [nc])]
        for t in tensors { for i in 0..<t.count { t.data[i] = Float(i % 7) * 0.01 } }
        a = tensors[0].data; b = tensors[1].data; c = tensors[2].data
    }
}

/// Lists the products made while it is installed; used by `vitq bench fp32`.
public final class GemmRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var shapes: [GemmShape] = []

    public init() {}

    /// Records the products made by `body` (in call order).
    public static func recording(_ body: () throws -> Void) rethrows -> [GemmShape] {
        let r = GemmRecorder()
        Gemm.recorder = r
        defer { Gemm.recorder = nil }
        try body()
        return r.lock.withLock { r.shapes }
    }

    func record(_ s: GemmShape) { lock.withLock { shapes.append(s) } }
}
