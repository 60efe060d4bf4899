import CVitqKernels
import VitqTensor

/// Per-thread scratch of the scorer: a few float, double and int16/int32 buffers reused
/// across candidates (taken from and returned to ``ScratchPool``).
final class Scratch {
    private var buffers: [Int: AlignedBuffer] = [:]

    /// Runs `body` with a scratch set, returning its buffers to the pool afterwards.
    static func with<R>(_ body: (Scratch) -> R) -> R {
        let s = Scratch()
        defer { for b in s.buffers.values { ScratchPool.shared.give(b) } }
        return body(s)
    }

    private func buffer(_ slot: Int, bytes: Int) -> UnsafeMutableRawPointer {
        if let b = buffers[slot], b.byteCount >= bytes { return b.raw }
        if let old = buffers[slot] { ScratchPool.shared.give(old) }
        let b = ScratchPool.shared.take(bytes: bytes)
        buffers[slot] = b
        return b.raw
    }

    /// Float slot 0, 1 or 2 with room for `count` values.
    func floats(_ slot: Int, _ count: Int) -> UnsafeMutablePointer<Float> {
        buffer(slot == 2 ? 8 : slot, bytes: count * 4).assumingMemoryBound(to: Float.self)
    }
    func doubles(_ count: Int) -> UnsafeMutablePointer<Double> { buffer(2, bytes: count * 8).assumingMemoryBound(to: Double.self) }
    func int16(_ count: Int) -> UnsafeMutablePointer<Int16> { buffer(3, bytes: count * 2).assumingMemoryBound(to: Int16.self) }
    func int32(_ count: Int) -> UnsafeMutablePointer<Int32> { buffer(6, bytes: count * 4).assumingMemoryBound(to: Int32.self) }
    func accumulators(_ count: Int) -> UnsafeMutablePointer<Int32> { buffer(7, bytes: count * 4).assumingMemoryBound(to: Int32.self) }
    /// Packed-A slot 0 or 1 (int32 words).
    func packedA(_ slot: Int, _ count: Int) -> UnsafeMutablePointer<Int32> { buffer(4 + slot, bytes: count * 4).assumingMemoryBound(to: Int32.self) }
}

/// How candidates are evaluated: the exact int8 kernels (what the search uses), or float fake
/// quantization with sgemm (kept to measure the integer kernels' speed-up, `vitq bench search`).
public enum ScoringArithmetic: String, Sendable {
    case integer
    case floatFakeQuant = "float-fake-quant"
}

/// ô = quantize(A)·Bᵀ, dequantized by the fused epilogue: the same arithmetic as the engine
/// (``Int8Linear``, ``Int8Attention``), single-threaded on one image or head.
enum QuantizedProduct {
    /// ô[rows, n] (row stride ldo) = fma(acc, colScale[j], bias[j]) with acc the exact product of
    /// `a` quantized by `aQuant` (scale index `aIndex`) and the packed B. `colScale` already holds
    /// A's step times B's.
    static func run(_ a: UnsafePointer<Float>, lda: Int, rows: Int, k: Int, a aQuant: OperandQuant, aIndex: Int,
                    packedB: UnsafePointer<Int16>, n: Int, colScale: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                    into ohat: UnsafeMutablePointer<Float>, ldo: Int, scratch s: Scratch) {
        let pa = s.packedA(0, Int(vitq_qgemm_packed_a_size(Int64(rows), Int64(k))))
        if case let .twin(t) = aQuant {
            let acc = s.accumulators(2 * rows * n)
            TwinGemm.runPacked(a, lda: lda, m: rows, k: k, quant: t[aIndex], packedB: packedB, n: n,
                               packedLo: pa, packedHi: s.packedA(1, Int(vitq_qgemm_packed_a_size(Int64(rows), Int64(k)))),
                               accLo: acc, accHi: acc + rows * n, colScale: colScale, bias: bias, into: ohat, ldy: ldo)
            return
        }
        var out = vitq_qgemm_output()
        out.f = ohat; out.ldf = Int64(ldo); out.col_scale = colScale
        if case let .perToken(scheme) = aQuant {
            // Rows on their own steps, quantized with step 1; the epilogue applies the steps and the
            // bias after the column scale (as the engine's ``Int8Gemm/Output/perToken(_:ldy:steps:bias:gelu:accumulate:)``).
            let xn = s.floats(2, rows * k + rows), steps = xn + rows * k
            PerTokenQuant.scaleAndPack(a, rows: rows, cols: k, ld: lda, scheme: scheme, steps: steps, scaled: xn, into: pa)
            out.row_scale = UnsafePointer(steps); out.row_bias = bias
            vitq_qgemm(pa, packedB, Int64(rows), Int64(n), Int64(k), &out)
            return
        }
        let q = aQuant.uniform
        vitq_qgemm_quantize_pack_a(a, Int64(lda), Int64(rows), Int64(k), q.scales[aIndex], q.zeroPoints[aIndex],
                                   q.scheme.qmin, q.scheme.qmax, pa)
        out.bias = bias
        vitq_qgemm(pa, packedB, Int64(rows), Int64(n), Int64(k), &out)
    }
}

extension QuantizedProduct {
    /// The float fake-quant counterpart for a linear op: ô = fq(x)·fq(W)ᵀ + bias with sgemm, fq(W)
    /// given as floats [n, k].
    static func runFloat(_ x: UnsafePointer<Float>, rows: Int, k: Int, input: OperandQuant, weight: UnsafePointer<Float>, n: Int,
                         bias: UnsafePointer<Float>?, into ohat: UnsafeMutablePointer<Float>, scratch s: Scratch) {
        let xf = s.floats(2, rows * k)
        switch input {
        case let .uniform(q): q.fakeQuantize(x, count: rows * k, into: xf)
        case let .twin(t): t[0].fakeQuantize(x, count: rows * k, into: xf)
        case let .perToken(scheme): PerTokenQuant.fakeQuantize(x, rows: rows, cols: k, scheme: scheme, into: xf)
        }
        Gemm.sgemm(m: rows, n: n, k: k, a: xf, lda: k, b: weight, ldb: k, transB: true, c: ohat, ldc: n)
        if let bias { Ops.addBias(ohat, bias, rows: rows, n: n) }
    }
}
