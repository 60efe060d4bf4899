import CVitqKernels
import VitqModels
import VitqTensor

/// A weight packed once for the integer GEMM (``vitq_qgemm``): int16 pairs in 16-column blocks.
public final class PackedWeight: @unchecked Sendable {
    public let n: Int, k: Int
    let buffer: AlignedBuffer
    /// The AVX-512 VNNI kernel's u8 × s8 form of the same weight, when that is the kernel level.
    let quads: AlignedBuffer?
    var pointer: UnsafePointer<Int16> { UnsafePointer(buffer.pointer(Int16.self)) }
    var quadsPointer: UnsafePointer<Int32>? { quads.map { UnsafePointer($0.pointer(Int32.self)) } }

    /// Packs int8 values [n, k] (and their VNNI form where the kernels use it).
    public init(values: [Int8], n: Int, k: Int) {
        self.n = n; self.k = k
        buffer = AlignedBuffer(byteCount: Int(vitq_qgemm_packed_b_size(Int64(n), Int64(k))) * 2)
        vitq_qgemm_pack_b_s8(values, Int64(k), Int64(n), Int64(k), buffer.pointer(Int16.self))
        let quads = AlignedBuffer(byteCount: Int(vitq_qgemm_b_quads_size(Int64(n), Int64(k))) * 4)
        let written = vitq_qgemm_pack_b_quads(buffer.pointer(Int16.self), Int64(n), Int64(k), quads.pointer(Int32.self)) != 0
        self.quads = written ? quads : nil
    }
}

/// Threaded integer GEMM with the float epilogue: quantize-and-pack the activation, then
/// y = acc · colScale[j] + bias[j], rows split across ``Parallel/threads`` at panel boundaries.
public enum Int8Gemm {
    static let mr = Int(VITQ_QGEMM_MR)

    /// int32 words of a packed A.
    public static func packedASize(m: Int, k: Int) -> Int { Int(vitq_qgemm_packed_a_size(Int64(m), Int64(k))) }

    /// Quantizes x [m, k] (row stride lda) with `quant` index `index` and packs it, threaded.
    public static func quantizePackA(_ x: UnsafePointer<Float>, lda: Int, m: Int, k: Int, quant: TensorQuant, index: Int = 0,
                                     into packed: UnsafeMutablePointer<Int32>) {
        let panels = (m + mr - 1) / mr, kp = (k + 1) / 2
        let s = quant.scales[index], z = quant.zeroPoints[index], lo = quant.scheme.qmin, hi = quant.scheme.qmax
        Parallel.forChunks(panels, minChunk: 8) { r in
            let r0 = r.lowerBound * mr, rows = min(r.upperBound * mr, m) - r0
            vitq_qgemm_quantize_pack_a(x + r0 * lda, Int64(lda), Int64(rows), Int64(k), s, z, lo, hi,
                                       packed + r.lowerBound * kp * mr)
        }
    }

    /// Quantizes LayerNorm(x) [m, dim] with `quant` and packs it, threaded, without writing the
    /// normalised rows: the same words as `norm.forward` followed by ``quantizePackA``.
    public static func layerNormQuantizePackA(_ x: UnsafePointer<Float>, norm: LayerNorm, m: Int, quant: TensorQuant,
                                              into packed: UnsafeMutablePointer<Int32>) {
        let dim = norm.weight.count, panels = (m + mr - 1) / mr, kp = (dim + 1) / 2
        let s = quant.scales[0], z = quant.zeroPoints[0], lo = quant.scheme.qmin, hi = quant.scheme.qmax
        Parallel.forChunks(panels, minChunk: 8) { r in
            let r0 = r.lowerBound * mr, rows = min(r.upperBound * mr, m) - r0
            vitq_layernorm_quantize_pack_a(x + r0 * dim, norm.weight.data, norm.bias.data, Int64(rows), Int64(dim), norm.eps,
                                           s, z, lo, hi, packed + r.lowerBound * kp * mr)
        }
    }

    /// The row steps and packed A of a per-token input (``PerTokenQuant``), of LayerNorm(x) when
    /// `norm` is given, threaded. Each block of panels is normalised, scaled and packed while it is
    /// in cache, so the full-size float rows are never written: the same steps and words as
    /// `norm.forward`, ``PerTokenQuant/scale(_:rows:cols:ld:scheme:steps:scaled:)`` and
    /// ``quantizePackA(_:lda:m:k:quant:index:into:)`` with the step-1 quantizer, one after the other.
    public static func perTokenQuantizePackA(_ x: UnsafePointer<Float>, lda: Int, m: Int, k: Int, scheme: QuantScheme, norm: LayerNorm? = nil,
                                             steps: UnsafeMutablePointer<Float>, into packed: UnsafeMutablePointer<Int32>) {
        let panels = (m + mr - 1) / mr, kp = (k + 1) / 2, blockPanels = 8
        Parallel.forChunks(panels, minChunk: 2) { r in
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: (norm == nil ? 1 : 2) * blockPanels * mr * k)
            defer { buffer.deallocate() }
            let scaled = buffer, normalised = buffer + blockPanels * mr * k
            for p0 in stride(from: r.lowerBound, to: r.upperBound, by: blockPanels) {
                let r0 = p0 * mr, rows = min(min(p0 + blockPanels, r.upperBound) * mr, m) - r0
                var source = x + r0 * lda, ld = lda
                if let norm {
                    vitq_layernorm_f32(source, normalised, norm.weight.data, norm.bias.data, Int64(rows), Int64(k), norm.eps)
                    source = UnsafePointer(normalised); ld = k
                }
                PerTokenQuant.scaleAndPack(source, rows: rows, cols: k, ld: ld, scheme: scheme, steps: steps + r0, scaled: scaled,
                                           into: packed + p0 * kp * mr)
            }
        }
    }

    /// Where the epilogue writes: float rows, or GELU of them quantized straight into the packed A
    /// of the next GEMM (whose input quantizer is `quant`, per tensor).
    public enum Output {
        /// y = v, or y += v with `accumulate`.
        case float(UnsafeMutablePointer<Float>, ldy: Int, accumulate: Bool)
        case geluPacked(UnsafeMutablePointer<Int32>, quant: TensorQuant)
        /// A per-token input's rows finished in the epilogue: y = fma(v, steps[i], bias[j]), then
        /// GELU of it or added into y, exactly `vitq_per_token_finish`
        /// of the stored product (the GEMM's own bias must then be nil).
        case perToken(UnsafeMutablePointer<Float>, ldy: Int, steps: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                      gelu: Bool, accumulate: Bool)
    }

    /// y[m, n] (row stride ldy) = A·Bᵀ·colScale + bias for a packed A and B, threaded over row panels.
    public static func run(packedA: UnsafePointer<Int32>, m: Int, weight: PackedWeight, colScale: UnsafePointer<Float>,
                           bias: UnsafePointer<Float>?, into y: UnsafeMutablePointer<Float>, ldy: Int) {
        run(packedA: packedA, m: m, weight: weight, colScale: colScale, bias: bias, output: .float(y, ldy: ldy, accumulate: false))
    }

    /// A·Bᵀ·colScale + bias through `output`, threaded over row panels.
    public static func run(packedA: UnsafePointer<Int32>, m: Int, weight: PackedWeight, colScale: UnsafePointer<Float>,
                           bias: UnsafePointer<Float>?, output: Output) {
        let panels = (m + mr - 1) / mr, kp = (weight.k + 1) / 2, kpOut = (weight.n + 1) / 2
        Parallel.forChunks(panels, minChunk: 4) { r in
            let r0 = r.lowerBound * mr, rows = min(r.upperBound * mr, m) - r0
            var out = vitq_qgemm_output()
            out.col_scale = colScale; out.bias = bias; out.b_quads = weight.quadsPointer
            switch output {
            case let .float(y, ldy, accumulate):
                out.f = y + r0 * ldy; out.ldf = Int64(ldy); out.accumulate = accumulate ? 1 : 0
            case let .perToken(y, ldy, steps, rowBias, gelu, accumulate):
                precondition(bias == nil && !(gelu && accumulate), "a per-token epilogue has its own bias and no GELU with a residual add")
                out.f = y + r0 * ldy; out.ldf = Int64(ldy); out.accumulate = accumulate ? 1 : 0
                out.row_scale = steps + r0; out.row_bias = rowBias; out.gelu = gelu ? 1 : 0
            case let .geluPacked(pa, quant):
                out.gelu = 1
                out.pa = pa + r.lowerBound * kpOut * mr
                out.pa_scale = quant.scales[0]; out.pa_zero = quant.zeroPoints[0]
                out.pa_qmin = quant.scheme.qmin; out.pa_qmax = quant.scheme.qmax
            }
            vitq_qgemm(packedA + r.lowerBound * kp * mr, weight.pointer, Int64(rows), Int64(weight.n), Int64(weight.k), &out)
        }
    }
}
