import CVitqKernels
import Foundation
import VitqTensor
import VitqTestSupport

/// How an accelerated kernel's output must match its reference's.
enum Agreement: CustomStringConvertible {
    /// Bit for bit: integer outputs, and float outputs whose lanes do the reference's exactly
    /// rounded operations in the same order.
    case bitEqual
    /// |accelerated − reference| ≤ bound · (1 + |reference|): float outputs of the AVX2 exp and
    /// erf approximations, which the references take from libm (Docs/ARCHITECTURE.md, Numerics).
    case relative(Float)
    /// Integer codes quantized from such approximate floats: at most this far apart (a value
    /// within the float bound of a rounding boundary may round the other way).
    case codes(Int64)

    var description: String {
        switch self {
        case .bitEqual: return "bit for bit"
        case let .relative(b): return "within \(b)·(1 + |ref|)"
        case let .codes(d): return "codes within \(d)"
        }
    }
}

/// The values one output of a kernel pair holds.
enum KernelValues {
    case floats([Float])
    case ints([Int64])
}

/// One output of a kernel pair on one input: what the reference and the accelerated variant wrote.
struct PairOutput {
    var name: String
    var agreement: Agreement
    var reference: KernelValues
    var accelerated: KernelValues

    init(_ name: String, _ agreement: Agreement, reference: [Float], accelerated: [Float]) {
        (self.name, self.agreement, self.reference, self.accelerated) = (name, agreement, .floats(reference), .floats(accelerated))
    }

    init<I: BinaryInteger>(_ name: String, _ agreement: Agreement = .bitEqual, reference: [I], accelerated: [I]) {
        (self.name, self.agreement) = (name, agreement)
        (self.reference, self.accelerated) = (.ints(reference.map { Int64($0) }), .ints(accelerated.map { Int64($0) }))
    }

    /// The first disagreement, or nil.
    var mismatch: String? {
        switch (reference, accelerated) {
        case let (.floats(r), .floats(a)):
            guard r.count == a.count else { return "\(name): \(r.count) reference values, \(a.count) accelerated" }
            for i in r.indices {
                let ok: Bool
                switch agreement {
                case .bitEqual: ok = r[i].bitPattern == a[i].bitPattern
                case let .relative(b): ok = abs(a[i] - r[i]) <= b * (1 + abs(r[i])) || (r[i].isNaN && a[i].isNaN)
                case .codes: ok = false
                }
                if !ok { return "\(name)[\(i)]: reference \(r[i]), accelerated \(a[i]), not \(agreement)" }
            }
        case let (.ints(r), .ints(a)):
            guard r.count == a.count else { return "\(name): \(r.count) reference values, \(a.count) accelerated" }
            let bound: Int64
            switch agreement {
            case .bitEqual: bound = 0
            case let .codes(d): bound = d
            case .relative: return "\(name): integer output with a float tolerance"
            }
            for i in r.indices where abs(r[i] - a[i]) > bound {
                return "\(name)[\(i)]: reference \(r[i]), accelerated \(a[i]), not \(agreement)"
            }
        default:
            return "\(name): the two outputs have different kinds"
        }
        return nil
    }
}

/// An accelerated kernel (`_avx2`, and any later `_avx512`/`_vnni` variant) and its scalar
/// reference, with one random case of both: the names are those in include/vitq_kernels.h.
struct KernelPair {
    var accelerated: String
    var reference: String
    /// Whether this CPU can run the accelerated kernel (AVX2 is required of the test machine; the
    /// AVX-512 VNNI kernels run where the CPU has them).
    var available: () -> Bool = { vitq_cpu_has_avx2() != 0 }
    /// Draws one input from the generator, runs both kernels on it and returns their outputs.
    var run: (inout SeededRandom) -> [PairOutput]
}

/// Random inputs the pairs share.
extension SeededRandom {
    mutating func floats(_ n: Int, scale: Float) -> [Float] { (0..<n).map { _ in symmetric(scale) } }
    mutating func count(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(next() % UInt64(range.count)) }
    /// An affine int8 quantizer: signed symmetric, or unsigned with a zero point.
    mutating func quantizer() -> (scale: Float, zero: Int32, qmin: Int32, qmax: Int32) {
        next() % 2 == 0 ? (Float(0.002 + uniform() * 0.05), 0, -127, 127) : (Float(0.002 + uniform() * 0.05), Int32(next() % 40), 0, 255)
    }
    mutating func twinParams() -> vitq_twin_params {
        vitq_twin_params(kind: next() % 2 == 0 ? VITQ_TWIN_SOFTMAX : VITQ_TWIN_GELU, bits: Int32(2 + next() % 7),
                         delta1: Float(1e-4 + uniform() * 0.05), shift: Int32(next() % 21))
    }
}

/// The int16 values of packed A words (each word holds the pair for k = 2p and 2p + 1).
func packedValues(_ words: [Int32]) -> [Int16] {
    words.flatMap { [Int16(truncatingIfNeeded: $0), Int16(truncatingIfNeeded: $0 >> 16)] }
}

func withOptional<R>(_ values: [Float]?, _ body: (UnsafePointer<Float>?) -> R) -> R {
    guard let values else { return body(nil) }
    return values.withUnsafeBufferPointer { body($0.baseAddress) }
}

enum KernelPairs {
    /// Float tolerances: the AVX2 GELU's erf and the softmax's exp against libm (the references),
    /// and LayerNorm's vector sums of squares.
    static let transcendental: Agreement = .relative(3e-6)
    static let layerNorm: Agreement = .relative(2e-5)

    /// Every accelerated kernel and its reference.
    static let all: [KernelPair] = fp32 + quantizers + gemm + twin + perToken + scores

    static let fp32: [KernelPair] = [
        KernelPair(accelerated: "vitq_layernorm_f32_avx2", reference: "vitq_layernorm_f32_ref") { rng in
            let rows = rng.count(1...6), dim = rng.count(1...800)
            let x = rng.floats(rows * dim, scale: 3).map { $0 + 0.7 }, g = rng.floats(dim, scale: 1), b = rng.floats(dim, scale: 1)
            var r = [Float](repeating: 0, count: x.count), a = r
            vitq_layernorm_f32_ref(x, &r, g, b, Int64(rows), Int64(dim), 1e-6)
            vitq_layernorm_f32_avx2(x, &a, g, b, Int64(rows), Int64(dim), 1e-6)
            return [PairOutput("y", layerNorm, reference: r, accelerated: a)]
        },
        KernelPair(accelerated: "vitq_softmax_f32_avx2", reference: "vitq_softmax_f32_ref") { rng in
            let rows = rng.count(1...6), n = rng.count(1...300), ld = n + rng.count(0...3)
            var r = rng.floats(rows * ld, scale: 20), a = r
            vitq_softmax_f32_ref(&r, Int64(rows), Int64(n), Int64(ld))
            vitq_softmax_f32_avx2(&a, Int64(rows), Int64(n), Int64(ld))
            return [PairOutput("x", transcendental, reference: r, accelerated: a)]
        },
        KernelPair(accelerated: "vitq_gelu_f32_avx2", reference: "vitq_gelu_f32_ref") { rng in
            let x = rng.floats(rng.count(1...2000), scale: 12)
            var r = [Float](repeating: 0, count: x.count), a = r
            vitq_gelu_f32_ref(x, &r, Int64(x.count))
            vitq_gelu_f32_avx2(x, &a, Int64(x.count))
            return [PairOutput("y", transcendental, reference: r, accelerated: a)]
        },
        KernelPair(accelerated: "vitq_add_f32_avx2", reference: "vitq_add_f32_ref") { rng in
            let n = rng.count(1...500), x = rng.floats(n, scale: 100)
            var r = rng.floats(n, scale: 100), a = r
            vitq_add_f32_ref(&r, x, Int64(n))
            vitq_add_f32_avx2(&a, x, Int64(n))
            return [PairOutput("y", .bitEqual, reference: r, accelerated: a)]
        },
        KernelPair(accelerated: "vitq_add_bias_f32_avx2", reference: "vitq_add_bias_f32_ref") { rng in
            let rows = rng.count(1...6), n = rng.count(1...300), ld = n + rng.count(0...3), bias = rng.floats(n, scale: 5)
            var r = rng.floats(rows * ld, scale: 5), a = r
            vitq_add_bias_f32_ref(&r, bias, Int64(rows), Int64(n), Int64(ld))
            vitq_add_bias_f32_avx2(&a, bias, Int64(rows), Int64(n), Int64(ld))
            return [PairOutput("y", .bitEqual, reference: r, accelerated: a)]
        },
    ]

    static let quantizers: [KernelPair] = [
        KernelPair(accelerated: "vitq_quantize_s8_avx2", reference: "vitq_quantize_s8_ref") { rng in
            let q = rng.quantizer(), x = rng.floats(rng.count(1...600), scale: 4)
            var r = [Int8](repeating: 0, count: x.count), a = r
            vitq_quantize_s8_ref(x, &r, Int64(x.count), q.scale, q.zero, q.qmin, min(q.qmax, 127))
            vitq_quantize_s8_avx2(x, &a, Int64(x.count), q.scale, q.zero, q.qmin, min(q.qmax, 127))
            return [PairOutput("q", reference: r, accelerated: a)]
        },
        KernelPair(accelerated: "vitq_dequantize_s8_avx2", reference: "vitq_dequantize_s8_ref") { rng in
            let q = rng.quantizer(), codes = (0..<rng.count(1...600)).map { _ in Int8(truncatingIfNeeded: rng.next()) }
            var r = [Float](repeating: 0, count: codes.count), a = r
            vitq_dequantize_s8_ref(codes, &r, Int64(codes.count), q.scale, q.zero)
            vitq_dequantize_s8_avx2(codes, &a, Int64(codes.count), q.scale, q.zero)
            return [PairOutput("x", .bitEqual, reference: r, accelerated: a)]
        },
        KernelPair(accelerated: "vitq_fake_quantize_f32_avx2", reference: "vitq_fake_quantize_f32_ref") { rng in
            let q = rng.quantizer(), x = rng.floats(rng.count(1...600), scale: 4)
            var r = [Float](repeating: 0, count: x.count), a = r
            vitq_fake_quantize_f32_ref(x, &r, Int64(x.count), q.scale, q.zero, q.qmin, q.qmax)
            vitq_fake_quantize_f32_avx2(x, &a, Int64(x.count), q.scale, q.zero, q.qmin, q.qmax)
            return [PairOutput("y", .bitEqual, reference: r, accelerated: a)]
        },
    ]

    static let gemm: [KernelPair] = [
        KernelPair(accelerated: "vitq_qgemm_quantize_pack_a_avx2", reference: "vitq_qgemm_quantize_pack_a_ref") { rng in
            let q = rng.quantizer(), m = rng.count(1...40), k = rng.count(1...200), lda = k + rng.count(0...3)
            let x = rng.floats(m * lda, scale: 3)
            var r = [Int32](repeating: 1, count: Int(vitq_qgemm_packed_a_size(Int64(m), Int64(k)))), a = r
            vitq_qgemm_quantize_pack_a_ref(x, Int64(lda), Int64(m), Int64(k), q.scale, q.zero, q.qmin, q.qmax, &r)
            vitq_qgemm_quantize_pack_a_avx2(x, Int64(lda), Int64(m), Int64(k), q.scale, q.zero, q.qmin, q.qmax, &a)
            return [PairOutput("packed", reference: r, accelerated: a)]
        },
        KernelPair(accelerated: "vitq_qgemm_quantize_pack_b_avx2", reference: "vitq_qgemm_quantize_pack_b_ref") { rng in
            let q = rng.quantizer(), n = rng.count(1...70), k = rng.count(1...200), transposed = Int32(rng.next() % 2)
            let ldb = (transposed == 0 ? k : n) + rng.count(0...3), x = rng.floats((transposed == 0 ? n : k) * ldb, scale: 3)
            var r = [Int16](repeating: 1, count: Int(vitq_qgemm_packed_b_size(Int64(n), Int64(k)))), a = r
            vitq_qgemm_quantize_pack_b_ref(x, Int64(ldb), Int64(n), Int64(k), transposed, q.scale, q.zero, q.qmin, q.qmax, &r)
            vitq_qgemm_quantize_pack_b_avx2(x, Int64(ldb), Int64(n), Int64(k), transposed, q.scale, q.zero, q.qmin, q.qmax, &a)
            return [PairOutput("packed", reference: r, accelerated: a)]
        },
        // The packed kernel's scalar version is its reference (vitq_gemm_s8s8s32_ref, on unpacked
        // operands, checks both in Int8GemmTests).
        packedGemm("vitq_qgemm_avx2", vitq_qgemm_avx2),
        packedGemm("vitq_qgemm_avx512vnni", vitq_qgemm_avx512vnni, available: { vitq_cpu_has_avx512vnni() != 0 }),
        packedGemm("vitq_qgemm_avxvnni", vitq_qgemm_avxvnni, available: { vitq_cpu_has_avxvnni() != 0 }),
        // B's VNNI form (s8 quads and column sums), made with AVX-512 and in plain C: the same words.
        KernelPair(accelerated: "vitq_qgemm_pack_b_quads_avx512", reference: "vitq_qgemm_pack_b_quads_portable",
                   available: { vitq_cpu_has_avx512vnni() != 0 }) { rng in
            let n = rng.count(1...70), k = rng.count(1...300)
            let b8 = (0..<(n * k)).map { _ in Int8(truncatingIfNeeded: rng.next()) }
            var pb = [Int16](repeating: 0, count: Int(vitq_qgemm_packed_b_size(Int64(n), Int64(k))))
            vitq_qgemm_pack_b_s8(b8, Int64(k), Int64(n), Int64(k), &pb)
            let size = Int(vitq_qgemm_b_quads_size(Int64(n), Int64(k)))
            var r = [Int32](repeating: 1, count: size), a = r
            let wr = vitq_qgemm_pack_b_quads_portable(pb, Int64(n), Int64(k), &r), wa = vitq_qgemm_pack_b_quads_avx512(pb, Int64(n), Int64(k), &a)
            // A value beyond int8 is refused by both (written: 0).
            var wide = pb, scratch = r
            wide[0] = 128
            let rw = vitq_qgemm_pack_b_quads_portable(wide, Int64(n), Int64(k), &scratch)
            let aw = vitq_qgemm_pack_b_quads_avx512(wide, Int64(n), Int64(k), &scratch)
            return [PairOutput("quads", reference: r + [wr, rw], accelerated: a + [wa, aw])]
        },
        KernelPair(accelerated: "vitq_softmax_quantize_pack_a_avx2", reference: "vitq_softmax_quantize_pack_a_ref") { rng in
            let m = rng.count(1...20), n = rng.count(1...200), ld = n + rng.count(0...3)
            var xr = rng.floats(m * ld, scale: 8), xa = xr
            var r = [Int32](repeating: 1, count: Int(vitq_qgemm_packed_a_size(Int64(m), Int64(n)))), a = r
            vitq_softmax_quantize_pack_a_ref(&xr, Int64(m), Int64(n), Int64(ld), 1 / 255, 0, 0, 255, &r)
            vitq_softmax_quantize_pack_a_avx2(&xa, Int64(m), Int64(n), Int64(ld), 1 / 255, 0, 0, 255, &a)
            return [PairOutput("probabilities", transcendental, reference: xr, accelerated: xa),
                    PairOutput("packed", .codes(1), reference: packedValues(r), accelerated: packedValues(a))]
        },
        KernelPair(accelerated: "vitq_layernorm_quantize_pack_a_avx2", reference: "vitq_layernorm_quantize_pack_a_ref") { rng in
            let q = rng.quantizer(), m = rng.count(1...20), dim = rng.count(1...400)
            let x = rng.floats(m * dim, scale: 3), gamma = rng.floats(dim, scale: 1.5), beta = rng.floats(dim, scale: 0.2)
            var r = [Int32](repeating: 1, count: Int(vitq_qgemm_packed_a_size(Int64(m), Int64(dim)))), a = r
            vitq_layernorm_quantize_pack_a_ref(x, gamma, beta, Int64(m), Int64(dim), 1e-6, q.scale, q.zero, q.qmin, q.qmax, &r)
            vitq_layernorm_quantize_pack_a_avx2(x, gamma, beta, Int64(m), Int64(dim), 1e-6, q.scale, q.zero, q.qmin, q.qmax, &a)
            return [PairOutput("packed", .codes(1), reference: packedValues(r), accelerated: packedValues(a))]
        },
    ]

    static let twin: [KernelPair] = [
        KernelPair(accelerated: "vitq_twin_encode_avx2", reference: "vitq_twin_encode_ref") { rng in
            let p = rng.twinParams(), x = TwinTestValues.make(count: rng.count(1...600), bits: Int(p.bits), delta1: p.delta1, shift: Int(p.shift), rng: &rng)
            var r = [UInt8](repeating: 0xAA, count: x.count), a = [UInt8](repeating: 0x55, count: x.count)
            vitq_twin_encode_ref(x, &r, Int64(x.count), p)
            vitq_twin_encode_avx2(x, &a, Int64(x.count), p)
            return [PairOutput("codes", reference: r, accelerated: a)]
        },
        KernelPair(accelerated: "vitq_twin_decode_avx2", reference: "vitq_twin_decode_ref") { rng in
            let p = rng.twinParams(), codes = (0..<rng.count(1...600)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            var r = [Float](repeating: 1, count: codes.count), a = [Float](repeating: 2, count: codes.count)
            vitq_twin_decode_ref(codes, &r, Int64(codes.count), p)
            vitq_twin_decode_avx2(codes, &a, Int64(codes.count), p)
            return [PairOutput("x", .bitEqual, reference: r, accelerated: a)]
        },
        KernelPair(accelerated: "vitq_twin_fake_quantize_avx2", reference: "vitq_twin_fake_quantize_ref") { rng in
            let p = rng.twinParams(), x = TwinTestValues.make(count: rng.count(1...600), bits: Int(p.bits), delta1: p.delta1, shift: Int(p.shift), rng: &rng)
            var r = [Float](repeating: 1, count: x.count), a = [Float](repeating: 2, count: x.count)
            vitq_twin_fake_quantize_ref(x, &r, Int64(x.count), p)
            vitq_twin_fake_quantize_avx2(x, &a, Int64(x.count), p)
            return [PairOutput("y", .bitEqual, reference: r, accelerated: a)]
        },
        KernelPair(accelerated: "vitq_twin_quantize_pack_a_avx2", reference: "vitq_twin_quantize_pack_a_ref") { rng in
            let p = rng.twinParams(), m = rng.count(1...20), k = rng.count(1...120), lda = k + rng.count(0...2)
            let x = TwinTestValues.make(count: m * lda, bits: Int(p.bits), delta1: p.delta1, shift: Int(p.shift), rng: &rng)
            let size = Int(vitq_qgemm_packed_a_size(Int64(m), Int64(k)))
            var loR = [Int32](repeating: 7, count: size), hiR = loR, loA = [Int32](repeating: -7, count: size), hiA = loA
            vitq_twin_quantize_pack_a_ref(x, Int64(lda), Int64(m), Int64(k), p, &loR, &hiR)
            vitq_twin_quantize_pack_a_avx2(x, Int64(lda), Int64(m), Int64(k), p, &loA, &hiA)
            return [PairOutput("lo", reference: loR, accelerated: loA), PairOutput("hi", reference: hiR, accelerated: hiA)]
        },
        KernelPair(accelerated: "vitq_twin_combine_avx2", reference: "vitq_twin_combine_ref") { rng in
            let m = rng.count(1...7), n = rng.count(1...45), ldc = n + rng.count(0...3), ldf = n + 2, shift = Int32(rng.next() % 21)
            let cLo = (0..<(m * ldc)).map { _ in Int32(truncatingIfNeeded: rng.next() >> (rng.next() % 40)) }
            let cHi = (0..<(m * ldc)).map { _ in Int32(truncatingIfNeeded: rng.next() >> (rng.next() % 40)) }
            let scale = rng.floats(n, scale: 1e-3), bias = rng.next() % 2 == 0 ? nil : rng.floats(n, scale: 1)
            var r = [Float](repeating: 3, count: m * ldf), a = r
            withOptional(bias) { bp in
                vitq_twin_combine_ref(cLo, cHi, Int64(ldc), Int64(m), Int64(n), shift, scale, bp, &r, Int64(ldf))
                vitq_twin_combine_avx2(cLo, cHi, Int64(ldc), Int64(m), Int64(n), shift, scale, bp, &a, Int64(ldf))
            }
            return [PairOutput("f", .bitEqual, reference: r, accelerated: a)]
        },
    ]

    /// The search's statistics: the same body built for wider registers, so bit for bit, every kind.
    static let scores: [KernelPair] = [
        scoreColumns("vitq_score_columns_avx2", vitq_score_columns_avx2),
        scoreColumns("vitq_score_columns_avx512", vitq_score_columns_avx512, available: { vitq_cpu_has_avx512vnni() != 0 }),
    ]

    typealias ScoreKernel = (UnsafePointer<Float>, Int64, UnsafePointer<Float>, UnsafePointer<Float>, Int64, Int64, Int64, Int32,
                             UnsafeMutablePointer<Double>) -> Void

    static func scoreColumns(_ name: String, _ kernel: @escaping ScoreKernel,
                             available: @escaping () -> Bool = { vitq_cpu_has_avx2() != 0 }) -> KernelPair {
        KernelPair(accelerated: name, reference: "vitq_score_columns_ref", available: available) { rng in
            let rows = rng.count(1...20), n = rng.count(1...150), ld = n + rng.count(0...3), ldh = n + rng.count(0...3)
            let kind = Int32(rng.next() % 5)
            let o = rng.floats(rows * ld, scale: 5), g = rng.floats(rows * ld, scale: 0.01)
            let ohat = (0..<(rows * ldh)).map { i in o[min(i, o.count - 1)] + rng.symmetric(0.1) }
            let start = (0..<(5 * n)).map { _ in Double(rng.uniform()) }
            var r = start, a = start
            vitq_score_columns_ref(ohat, Int64(ldh), o, g, Int64(ld), Int64(rows), Int64(n), kind, &r)
            kernel(ohat, Int64(ldh), o, g, Int64(ld), Int64(rows), Int64(n), kind, &a)
            return [PairOutput("stats (kind \(kind))", reference: r.map { Int64(bitPattern: $0.bitPattern) },
                               accelerated: a.map { Int64(bitPattern: $0.bitPattern) })]
        }
    }

    static let perToken: [KernelPair] = [
        KernelPair(accelerated: "vitq_per_token_scale_avx2", reference: "vitq_per_token_scale_ref") { rng in
            let rows = rng.count(1...12), cols = rng.count(1...100), ld = cols + rng.count(0...3)
            var x = rng.floats(rows * ld, scale: 6)
            if rng.next() % 3 == 0 { x[Int(rng.next() % UInt64(x.count))] = [.nan, .infinity, 0][Int(rng.next() % 3)] }
            var sr = [Float](repeating: 0, count: rows), sa = sr, r = [Float](repeating: 0, count: rows * cols), a = r
            vitq_per_token_scale_ref(x, Int64(ld), Int64(rows), Int64(cols), 127, &sr, &r)
            vitq_per_token_scale_avx2(x, Int64(ld), Int64(rows), Int64(cols), 127, &sa, &a)
            return [PairOutput("steps", .bitEqual, reference: sr, accelerated: sa), PairOutput("out", .bitEqual, reference: r, accelerated: a)]
        },
        KernelPair(accelerated: "vitq_per_token_finish_avx2", reference: "vitq_per_token_finish_ref") { rng in
            let rows = rng.count(1...12), n = rng.count(1...100), ld = n + rng.count(0...3)
            let v = rng.floats(rows * ld, scale: 100), steps = (0..<rows).map { _ in Float(0.001 + rng.uniform() * 0.05) }
            let bias = rng.next() % 2 == 0 ? nil : rng.floats(n, scale: 1)
            let (gelu, accumulate): (Int32, Int32) = [(0, 0), (1, 0), (0, 1)][Int(rng.next() % 3)]
            var r = rng.floats(rows * ld, scale: 2), a = r
            withOptional(bias) { bp in
                vitq_per_token_finish_ref(v, Int64(ld), Int64(rows), Int64(n), steps, bp, gelu, accumulate, &r, Int64(ld))
                vitq_per_token_finish_avx2(v, Int64(ld), Int64(rows), Int64(n), steps, bp, gelu, accumulate, &a, Int64(ld))
            }
            return [PairOutput("y (gelu \(gelu), accumulate \(accumulate))", gelu == 1 ? transcendental : .bitEqual, reference: r, accelerated: a)]
        },
    ]

    /// The accelerated kernels declared in include/vitq_kernels.h: every function whose name ends
    /// in an instruction-set suffix (`_avx2`, `_avx512…`, `_avxvnni`, `_vnni…`), the CPU-feature queries
    /// (`(void)` parameters) aside.
    typealias PackedGemmKernel = (UnsafePointer<Int32>, UnsafePointer<Int16>, Int64, Int64, Int64, UnsafePointer<vitq_qgemm_output>) -> Void

    /// A packed integer GEMM variant against the scalar one: int32 out, and the float epilogue
    /// (scale, bias, accumulate), on shapes past the AVX-512 kernel's 64-column tile.
    static func packedGemm(_ name: String, _ kernel: @escaping PackedGemmKernel,
                           available: @escaping () -> Bool = { vitq_cpu_has_avx2() != 0 }) -> KernelPair {
        KernelPair(accelerated: name, reference: "vitq_qgemm_scalar", available: available) { rng in
            let m = rng.count(1...30), n = rng.count(1...150), k = rng.count(1...300)
            let a8 = (0..<(m * k)).map { _ in Int8(truncatingIfNeeded: rng.next()) }, b8 = (0..<(n * k)).map { _ in Int8(truncatingIfNeeded: rng.next()) }
            var pa = [Int32](repeating: 0, count: Int(vitq_qgemm_packed_a_size(Int64(m), Int64(k))))
            var pb = [Int16](repeating: 0, count: Int(vitq_qgemm_packed_b_size(Int64(n), Int64(k))))
            vitq_qgemm_pack_a_s8(a8, Int64(k), Int64(m), Int64(k), &pa)
            vitq_qgemm_pack_b_s8(b8, Int64(k), Int64(n), Int64(k), &pb)
            let colScale = (0..<n).map { _ in Float(1e-4 * (1 + rng.uniform())) }, bias = rng.floats(n, scale: 1)
            func products(_ kernel: PackedGemmKernel) -> (c: [Int32], f: [Float]) {
                var c = [Int32](repeating: -1, count: m * n), f = [Float](repeating: 0.5, count: m * n)
                c.withUnsafeMutableBufferPointer { cp in
                    var out = vitq_qgemm_output()
                    out.c = cp.baseAddress; out.ldc = Int64(n)
                    kernel(pa, pb, Int64(m), Int64(n), Int64(k), &out)
                }
                colScale.withUnsafeBufferPointer { sp in bias.withUnsafeBufferPointer { bp in f.withUnsafeMutableBufferPointer { fp in
                    var out = vitq_qgemm_output()
                    out.f = fp.baseAddress; out.ldf = Int64(n); out.accumulate = 1
                    out.col_scale = sp.baseAddress; out.bias = bp.baseAddress
                    kernel(pa, pb, Int64(m), Int64(n), Int64(k), &out)
                } } }
                return (c, f)
            }
            let (r, a) = (products(vitq_qgemm_scalar), products(kernel))
            return [PairOutput("c", reference: r.c, accelerated: a.c), PairOutput("f (scale, bias, accumulate)", .bitEqual, reference: r.f, accelerated: a.f)]
        }
    }

    static func declaredAccelerated(header: String) throws -> [String] {
        let declaration = try NSRegularExpression(pattern: #"^[A-Za-z_][\w ]*?\**\s*\b(vitq_\w+?_(?:avx2|avx512\w*|avxvnni|vnni\w*))\s*\((?!void\))"#,
                                                  options: [.anchorsMatchLines])
        return declaration.matches(in: header, range: NSRange(header.startIndex..., in: header)).map {
            String(header[Range($0.range(at: 1), in: header)!])
        }
    }

    /// Every function name declared in the header.
    static func declared(header: String) throws -> Set<String> {
        let declaration = try NSRegularExpression(pattern: #"^[A-Za-z_][\w ]*?\**\s*\b(vitq_\w+)\s*\("#, options: [.anchorsMatchLines])
        return Set(declaration.matches(in: header, range: NSRange(header.startIndex..., in: header)).map {
            String(header[Range($0.range(at: 1), in: header)!])
        })
    }

    static var headerPath: String { Fixtures.packageRoot + "/Sources/CVitqKernels/include/vitq_kernels.h" }
}
