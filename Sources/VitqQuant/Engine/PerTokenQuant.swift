import CVitqKernels
import VitqTensor

/// Dynamic per-token quantization of a linear op's input (``OperandQuant/perToken(_:)``), the
/// token-wise activation quantization of ZeroQuant and LLM.int8(): row r gets its own symmetric
/// step Δ_r = max_r|x| / qmax when it is quantized, so each token's grid is as fine as its own
/// largest value allows, however large other tokens are (ALGORITHMS.md §6d).
///
/// The product stays an exact integer GEMM: row r is multiplied by 1/Δ_r (rounded to float once,
/// as the uniform quantizer rounds 1/Δ) and quantized with step 1, which rounds exactly the values
/// the uniform quantizer of step Δ_r would; the epilogue gives acc·Δw[j], then row r is finished
/// as fma(that, Δ_r, bias[j]). The engine, the fake-quant reference and the search all use these
/// functions (`vitq_per_token_*` in CVitqKernels), so they agree bit for bit.
public enum PerTokenQuant {
    /// Δ_r of `rows` rows of `cols` values (row stride `ld`) into `steps` (1 for a row without a
    /// finite non-zero maximum), and the rows times 1/Δ_r into `scaled`, dense [rows, cols].
    public static func scale(_ x: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int, scheme: QuantScheme,
                             steps: UnsafeMutablePointer<Float>, scaled: UnsafeMutablePointer<Float>) {
        vitq_per_token_scale(x, Int64(ld), Int64(rows), Int64(cols), Float(scheme.qmax), steps, scaled)
    }

    /// Steps and the packed A (from a panel boundary) of `rows` rows, on the calling thread:
    /// ``scale(_:rows:cols:ld:scheme:steps:scaled:)`` into `scaled` ([rows, cols] floats of scratch),
    /// then those rows quantized with step 1 and packed. The engine runs it block by block
    /// (``Int8Gemm/perTokenQuantizePackA(_:lda:m:k:scheme:norm:steps:into:)``), the search per image.
    public static func scaleAndPack(_ x: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int, scheme: QuantScheme,
                                    steps: UnsafeMutablePointer<Float>, scaled: UnsafeMutablePointer<Float>,
                                    into packed: UnsafeMutablePointer<Int32>) {
        scale(x, rows: rows, cols: cols, ld: ld, scheme: scheme, steps: steps, scaled: scaled)
        vitq_qgemm_quantize_pack_a(scaled, Int64(cols), Int64(rows), Int64(cols), 1, 0, scheme.qmin, scheme.qmax, packed)
    }

    /// The epilogue as a pass of its own: y[i, j] = fma(y[i, j], Δ_i, bias[j]) for the GEMM output
    /// y = acc·Δw[j] [rows, n] (the fake-quant reference's; the engine and the search apply the same
    /// operations in the GEMM's epilogue, ``Int8Gemm/Output/perToken(_:ldy:steps:bias:gelu:accumulate:)``).
    public static func finish(_ y: UnsafeMutablePointer<Float>, ldy: Int, rows: Int, n: Int, steps: UnsafePointer<Float>,
                              bias: UnsafePointer<Float>?) {
        vitq_per_token_finish(UnsafePointer(y), Int64(ldy), Int64(rows), Int64(n), steps, bias, 0, 0, y, Int64(ldy))
    }

    /// The float image of the quantizer, row by row (the fake-quant scoring of `vitq bench search`).
    public static func fakeQuantize(_ x: UnsafePointer<Float>, rows: Int, cols: Int, scheme: QuantScheme,
                                    into y: UnsafeMutablePointer<Float>) {
        let steps = UnsafeMutablePointer<Float>.allocate(capacity: max(1, rows))
        defer { steps.deallocate() }
        scale(x, rows: rows, cols: cols, ld: cols, scheme: scheme, steps: steps, scaled: y)
        let lo = Float(scheme.qmin), hi = Float(scheme.qmax)
        for r in 0..<rows {
            for c in 0..<cols { y[r * cols + c] = min(max(y[r * cols + c].rounded(.toNearestOrEven), lo), hi) * steps[r] }
        }
    }
}
