import VitqTensor

/// Dynamic per-token quantization of a linear op's input (``OperandQuant/perToken(_:)``), the
/// token-wise activation quantization of ZeroQuant and LLM.int8(): row r gets its own symmetric
/// step Δ_r = max_r|x| / qmax when it is quantized, so each token's grid is as fine as its own
/// largest value allows, however large other tokens are (ALGORITHMS.md §6c).
///
/// The product stays an exact integer GEMM: row r is multiplied by 1/Δ_r (rounded to float once,
/// as the uniform quantizer rounds 1/Δ) and quantized with step 1, which rounds exactly the values
/// the uniform quantizer of step Δ_r would; the epilogue gives acc·Δw[j], then row r is finished
/// as fma(that, Δ_r, bias[j]). The engine, the fake-quant reference and the search all use these
/// functions, so they agree bit for bit.
public enum PerTokenQuant {
    /// Δ_r of `rows` rows of `cols` values (row stride `ld`) into `steps`: max|x| / qmax, or 1 for
    /// a row without a finite non-zero maximum.
    public static func steps(_ x: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int, scheme: QuantScheme,
                             into steps: UnsafeMutablePointer<Float>) {
        let qmax = Float(scheme.qmax)
        for r in 0..<rows {
            let m = Ops.maxAbs(x + r * ld, cols: cols)
            steps[r] = m > 0 && m.isFinite ? m / qmax : 1
        }
    }

    /// out[r, c] = x[r, c] · (1/Δ_r), dense [rows, cols]: what the step-1 quantizer rounds.
    public static func normalize(_ x: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int, steps: UnsafePointer<Float>,
                                 into out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let inv = 1 / steps[r]
            for c in 0..<cols { out[r * cols + c] = x[r * ld + c] * inv }
        }
    }

    /// The step-1 grid the normalized rows are quantized on.
    public static func unitQuant(_ scheme: QuantScheme) -> TensorQuant {
        TensorQuant(scheme: scheme, granularity: .perTensor, scales: [1])
    }

    /// y[i, j] = fma(y[i, j], Δ_i, bias[j]) for the GEMM output y = acc·Δw[j] [rows, n] (row stride ldy).
    public static func finish(_ y: UnsafeMutablePointer<Float>, ldy: Int, rows: Int, n: Int, steps: UnsafePointer<Float>,
                              bias: UnsafePointer<Float>?) {
        for i in 0..<rows {
            let s = steps[i], row = y + i * ldy
            if let bias { for j in 0..<n { row[j] = bias[j].addingProduct(row[j], s) } }
            else { for j in 0..<n { row[j] = Float(0).addingProduct(row[j], s) } }
        }
    }

    /// The float image of the quantizer, row by row (the fake-quant scoring of `vitq bench search`).
    public static func fakeQuantize(_ x: UnsafePointer<Float>, rows: Int, cols: Int, scheme: QuantScheme,
                                    into y: UnsafeMutablePointer<Float>) {
        let lo = Float(scheme.qmin), hi = Float(scheme.qmax)
        for r in 0..<rows {
            var s: Float = 0
            steps(x + r * cols, rows: 1, cols: cols, ld: cols, scheme: scheme, into: &s)
            let inv = 1 / s
            for c in 0..<cols { y[r * cols + c] = min(max((x[r * cols + c] * inv).rounded(.toNearestOrEven), lo), hi) * s }
        }
    }
}
