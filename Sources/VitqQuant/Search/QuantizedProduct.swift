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

    /// Float slot 0 or 1 with room for `count` values.
    func floats(_ slot: Int, _ count: Int) -> UnsafeMutablePointer<Float> { buffer(slot, bytes: count * 4).assumingMemoryBound(to: Float.self) }
    func doubles(_ count: Int) -> UnsafeMutablePointer<Double> { buffer(2, bytes: count * 8).assumingMemoryBound(to: Double.self) }
    func int16(_ count: Int) -> UnsafeMutablePointer<Int16> { buffer(3, bytes: count * 2).assumingMemoryBound(to: Int16.self) }
    func int32(_ count: Int) -> UnsafeMutablePointer<Int32> { buffer(6, bytes: count * 4).assumingMemoryBound(to: Int32.self) }
    /// Packed-A slot 0 or 1 (int32 words).
    func packedA(_ slot: Int, _ count: Int) -> UnsafeMutablePointer<Int32> { buffer(4 + slot, bytes: count * 4).assumingMemoryBound(to: Int32.self) }
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
        let q = aQuant.uniform
        vitq_qgemm_quantize_pack_a(a, Int64(lda), Int64(rows), Int64(k), q.scales[aIndex], q.zeroPoints[aIndex],
                                   q.scheme.qmin, q.scheme.qmax, pa)
        var out = vitq_qgemm_output()
        out.f = ohat; out.ldf = Int64(ldo); out.col_scale = colScale; out.bias = bias
        vitq_qgemm(pa, packedB, Int64(rows), Int64(n), Int64(k), &out)
    }
}
