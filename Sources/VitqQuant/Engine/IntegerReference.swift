import VitqTensor

/// The integer arithmetic of the engine, redone independently in double precision: operands
/// are quantized to their integer values (q − zero) as doubles, multiplied with OpenBLAS dgemm
/// (exact: every sum of int8-range products stays far below 2^53), converted to float with
/// round-to-nearest-even as the kernel's int32 → float conversion does, and finished with the
/// same fused multiply-add epilogue. The fake-quant path is built on this, so it must equal the
/// packed AVX2 engine bit for bit.
enum IntegerReference {
    /// q − zero of one value, exactly as the C quantizers compute it.
    @inline(__always)
    static func centered(_ x: Float, _ inv: Float, _ zero: Int32, _ lo: Float, _ hi: Float) -> Double {
        let t = min(max((x * inv).rounded(.toNearestOrEven) + Float(zero), lo), hi)
        return Double(Int32(t) - zero)
    }

    /// Rows [rows, cols] (row stride ld) quantized with scale `index` to centered doubles [rows, cols]:
    /// q − zero for a uniform quantizer, the integer in units of Δ1 for a twin one, and for a
    /// per-token one the integer of each row on its own step Δ_r (``PerTokenQuant``), the steps
    /// written to `rowSteps` when given.
    static func quantize(_ x: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int, _ quant: OperandQuant, index: Int,
                         into out: UnsafeMutablePointer<Double>, transposed: Bool = false,
                         rowSteps: UnsafeMutablePointer<Float>? = nil) {
        if case let .perToken(scheme) = quant {
            precondition(!transposed, "per-token operands are linear inputs, never transposed")
            let steps = rowSteps ?? UnsafeMutablePointer<Float>.allocate(capacity: rows)
            let scaled = UnsafeMutablePointer<Float>.allocate(capacity: rows * cols)
            defer { if rowSteps == nil { steps.deallocate() }; scaled.deallocate() }
            PerTokenQuant.scale(x, rows: rows, cols: cols, ld: ld, scheme: scheme, steps: steps, scaled: scaled)
            let lo = Float(scheme.qmin), hi = Float(scheme.qmax)
            for i in 0..<(rows * cols) { out[i] = Double(min(max(scaled[i].rounded(.toNearestOrEven), lo), hi)) }
            return
        }
        let value: (Float) -> Double
        switch quant {
        case let .twin(t):
            value = { Double(t[index].integer($0)) }
        case let .uniform(q):
            let inv = 1 / q.scales[index], z = q.zeroPoints[index], lo = Float(q.scheme.qmin), hi = Float(q.scheme.qmax)
            value = { centered($0, inv, z, lo, hi) }
        case .perToken:
            preconditionFailure("handled above")
        }
        for r in 0..<rows {
            for c in 0..<cols {
                let v = value(x[r * ld + c])
                if transposed { out[c * rows + r] = v } else { out[r * cols + c] = v }
            }
        }
    }

    /// y[i, j] = fma(float(acc[i, j]), colScale[j], bias[j]) with acc = A·Bᵀ exact, A [m, k], B [n, k].
    static func product(_ a: UnsafePointer<Double>, _ b: UnsafePointer<Double>, m: Int, n: Int, k: Int,
                        colScale: (Int) -> Float, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>, ldy: Int) {
        let acc = UnsafeMutablePointer<Double>.allocate(capacity: max(1, m * n))
        defer { acc.deallocate() }
        Gemm.dgemmNT(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, c: acc, ldc: n)
        for i in 0..<m {
            for j in 0..<n {
                y[i * ldy + j] = (bias?[j] ?? 0).addingProduct(Float(acc[i * n + j]), colScale(j))
            }
        }
    }
}
