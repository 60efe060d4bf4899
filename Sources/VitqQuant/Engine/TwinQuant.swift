import CVitqKernels
import VitqTensor

/// Which activation a twin uniform quantizer is shaped for.
public enum TwinKind: String, Codable, Sendable {
    /// Post-softmax values (≥ 0): R1 holds the small values, R2 the rest.
    case softmax
    /// Post-GELU values (≥ about −0.17): R1 holds the negative part, R2 the non-negative part.
    case gelu
}

/// PTQ4ViT's twin uniform quantizer (ALGORITHMS.md §3).
///
/// A code is one byte: bit `bits − 1` flags the range (0 = R1, 1 = R2) and the low `bits − 1` bits
/// hold the magnitude. R1 has step ``delta1``, R2 has step ``delta2`` = delta1·2^shift. The value of a
/// code, in units of Δ1, is the integer the GEMM multiplies (``integer(_:)``); the reconstruction is
/// that integer times Δ1, with no split offset. The kernels are `vitq_twin_*` in CVitqKernels.
public struct TwinQuant: Equatable, Sendable {
    /// The activation the ranges are shaped for.
    public var kind: TwinKind
    /// Bits per code, 2...8.
    public var bits: Int
    /// The R1 step.
    public var delta1: Float
    /// Δ2 = Δ1·2^shift, shift in 0...20.
    public var shift: Int

    /// A quantizer with R1 step `delta1` and R2 step `delta1`·2^`shift`.
    public init(kind: TwinKind, bits: Int, delta1: Float, shift: Int) {
        precondition((2...8).contains(bits), "twin quantizer bits must be in 2...8")
        precondition((0...20).contains(shift), "twin quantizer shift must be in 0...20")
        precondition(delta1 > 0 && delta1.isFinite, "twin quantizer step must be positive and finite")
        self.kind = kind; self.bits = bits; self.delta1 = delta1; self.shift = shift
    }

    /// The R2 step, delta1·2^shift exactly.
    public var delta2: Float { Float(sign: .plus, exponent: shift, significand: delta1) }

    /// The largest magnitude of either range, 2^(bits−1) − 1.
    public var maxMagnitude: Int { (1 << (bits - 1)) - 1 }

    /// The C kernels' description of this quantizer.
    public var params: vitq_twin_params {
        vitq_twin_params(kind: kind == .gelu ? VITQ_TWIN_GELU : VITQ_TWIN_SOFTMAX, bits: Int32(bits),
                         delta1: delta1, shift: Int32(shift))
    }

    /// Codes of `count` values.
    public func encode(_ x: UnsafePointer<Float>, count: Int, into codes: UnsafeMutablePointer<UInt8>) {
        vitq_twin_encode(x, codes, Int64(count), params)
    }

    /// Values of `count` codes.
    public func decode(_ codes: UnsafePointer<UInt8>, count: Int, into x: UnsafeMutablePointer<Float>) {
        vitq_twin_decode(codes, x, Int64(count), params)
    }

    /// y = decode(encode(x)); `x` and `y` may be the same memory.
    public func fakeQuantize(_ x: UnsafePointer<Float>, count: Int, into y: UnsafeMutablePointer<Float>) {
        vitq_twin_fake_quantize(x, y, Int64(count), params)
    }

    /// The integer (units of Δ1) of one value, as the GEMM multiplies it — for references.
    /// Computed independently of the C kernels, with the same float operations.
    public func integer(_ x: Float) -> Int64 {
        let qmax = Float(maxMagnitude), inv1 = 1 / delta1, inv2 = 1 / delta2
        func clamp(_ t: Float) -> Float { let u = t > 0 ? t : 0; return u < qmax ? u : qmax }
        switch kind {
        case .softmax:
            let t = (x * inv1).rounded(.toNearestOrEven)
            if t <= qmax { return Int64(t > 0 ? t : 0) }
        case .gelu:
            if x < 0 { return -Int64(clamp((-x * inv1).rounded(.toNearestOrEven))) }
        }
        return Int64(clamp((x * inv2).rounded(.toNearestOrEven))) << shift
    }

    /// The integer (units of Δ1) a code stands for.
    public func integer(code: UInt8) -> Int64 {
        let mag = Int64(Int(code) & maxMagnitude)
        if Int(code) & (1 << (bits - 1)) != 0 { return mag << shift }
        return kind == .gelu ? -mag : mag
    }
}

/// y[m, n] = Σ_k twin(x)[i,k]·w[j,k] · colScale[j] + bias[j], exactly: two integer GEMMs
/// (R1 part and R2 part) combined with a shift, threaded over row panels like Int8Gemm.run.
public enum TwinGemm {
    static let mr = Int(VITQ_QGEMM_MR)
    /// Row panels per block of the threaded path (bounds the accumulator scratch).
    static let panelsPerBlock = 8

    /// Int32 counts of the scratch ``runPacked`` needs: each packed A buffer, and each accumulator [m, n].
    public static func scratchCounts(m: Int, n: Int, k: Int) -> (packedA: Int, acc: Int) {
        (Int(vitq_qgemm_packed_a_size(Int64(m), Int64(k))), m * n)
    }

    /// y[m, n] (row stride ldy) for x [m, weight.k] (row stride lda) and a packed weight, threaded
    /// over row panels; each thread works on blocks of rows with pooled scratch.
    public static func run(_ x: UnsafePointer<Float>, lda: Int, m: Int, quant: TwinQuant, weight: PackedWeight,
                           colScale: UnsafePointer<Float>, bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>, ldy: Int) {
        let panels = (m + mr - 1) / mr, n = weight.n, k = weight.k
        Parallel.forChunks(panels, minChunk: 2) { r in
            let maxRows = min(panelsPerBlock, r.count) * mr
            let s = scratchCounts(m: maxRows, n: n, k: k)
            ScratchPool.shared.with(bytes: 4 * (2 * s.packedA + 2 * s.acc)) { buf in
                let base = buf.pointer(Int32.self)
                var p = r.lowerBound
                while p < r.upperBound {
                    let r0 = p * mr, rows = min(min(p + panelsPerBlock, r.upperBound) * mr, m) - r0
                    runPacked(x + r0 * lda, lda: lda, m: rows, k: k, quant: quant, packedB: weight.pointer, n: n,
                              packedLo: base, packedHi: base + s.packedA,
                              accLo: base + 2 * s.packedA, accHi: base + 2 * s.packedA + s.acc,
                              colScale: colScale, bias: bias, into: y + r0 * ldy, ldy: ldy)
                    p += panelsPerBlock
                }
            }
        }
    }

    /// The single-threaded unit (e.g. P·V with a twin P in an attention head): quantize-and-pack x
    /// [m, k] (row stride lda) into `packedLo`/`packedHi`, multiply each by the packed B [n, k]
    /// (`vitq_qgemm` layout, e.g. from `vitq_qgemm_quantize_pack_b`) into `accLo`/`accHi` (row
    /// stride n), and combine: y = (accLo + accHi·2^shift)·colScale + bias. Scratch sizes are
    /// ``scratchCounts(m:n:k:)``.
    public static func runPacked(_ x: UnsafePointer<Float>, lda: Int, m: Int, k: Int, quant: TwinQuant,
                                 packedB: UnsafePointer<Int16>, n: Int,
                                 packedLo: UnsafeMutablePointer<Int32>, packedHi: UnsafeMutablePointer<Int32>,
                                 accLo: UnsafeMutablePointer<Int32>, accHi: UnsafeMutablePointer<Int32>,
                                 colScale: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                                 into y: UnsafeMutablePointer<Float>, ldy: Int) {
        if m <= 0 || n <= 0 { return }
        let (m64, n64, k64) = (Int64(m), Int64(n), Int64(k))
        vitq_twin_quantize_pack_a(x, Int64(lda), m64, k64, quant.params, packedLo, packedHi)
        var out = vitq_qgemm_output()
        out.ldc = n64
        out.c = accLo
        vitq_qgemm(packedLo, packedB, m64, n64, k64, &out)
        out.c = accHi
        vitq_qgemm(packedHi, packedB, m64, n64, k64, &out)
        vitq_twin_combine(accLo, accHi, n64, m64, n64, Int32(quant.shift), colScale, bias, y, Int64(ldy))
    }
}
