import CVitqKernels
import VitqTensor
import XCTest

/// The exact integer GEMM: the AVX-512 VNNI (on a CPU that has it), AVX2 and scalar packed kernels
/// equal the plain reference bit for bit (int32 out), their epilogues agree bit for bit, and the
/// AVX2 quantize-and-pack routines equal the scalar ones.
final class Int8GemmTests: XCTestCase {
    /// The vector kernels this CPU can run, by name.
    static var vectorKernels: [(name: String, kernel: Kernel)] {
        [("avx2", vitq_qgemm_avx2)] + (vitq_cpu_has_avxvnni() != 0 ? [("avxvnni", vitq_qgemm_avxvnni)] : [])
            + (vitq_cpu_has_avx512vnni() != 0 ? [("avx512vnni", vitq_qgemm_avx512vnni)] : [])
    }

    struct Packed { var a: [Int32]; var b: [Int16] }

    func pack(_ a: [Int8], _ b: [Int8], m: Int, n: Int, k: Int) -> Packed {
        var pa = [Int32](repeating: 7, count: Int(vitq_qgemm_packed_a_size(Int64(m), Int64(k))))
        var pb = [Int16](repeating: 7, count: Int(vitq_qgemm_packed_b_size(Int64(n), Int64(k))))
        vitq_qgemm_pack_a_s8(a, Int64(k), Int64(m), Int64(k), &pa)
        vitq_qgemm_pack_b_s8(b, Int64(k), Int64(n), Int64(k), &pb)
        return Packed(a: pa, b: pb)
    }

    typealias Kernel = (UnsafePointer<Int32>, UnsafePointer<Int16>, Int64, Int64, Int64, UnsafePointer<vitq_qgemm_output>) -> Void

    func int32Product(_ p: Packed, m: Int, n: Int, k: Int, kernel: Kernel) -> [Int32] {
        var c = [Int32](repeating: -1, count: m * n)
        c.withUnsafeMutableBufferPointer { cp in
            var out = vitq_qgemm_output()
            out.c = cp.baseAddress; out.ldc = Int64(n)
            kernel(p.a, p.b, Int64(m), Int64(n), Int64(k), &out)
        }
        return c
    }

    func reference(_ a: [Int8], _ b: [Int8], m: Int, n: Int, k: Int) -> [Int32] {
        var c = [Int32](repeating: 0, count: m * n)
        vitq_gemm_s8s8s32_ref(a, Int64(k), b, Int64(k), Int64(m), Int64(n), Int64(k), &c, Int64(n))
        return c
    }

    /// Full range, with the extremes over-represented.
    func draw(_ rng: inout SeededRandom) -> Int8 {
        switch rng.next() % 8 { case 0: return -128; case 1: return 127; default: return Int8(truncatingIfNeeded: rng.next()) }
    }

    func testPackedKernelsEqualTheReferenceOnRandomShapes() {
        var rng = SeededRandom(seed: 7)
        // The AVX-512 kernel's wide tile is 64 columns: shapes below, at and past it, with tails.
        var shapes: [(Int, Int, Int)] = [(1, 1, 1), (6, 16, 2), (7, 17, 3), (5, 15, 4095), (13, 33, 4096), (70, 1, 4096),
                                         (6, 64, 2), (7, 65, 33), (13, 130, 100), (25, 200, 4096), (1, 129, 1)]
        while shapes.count < 70 {
            shapes.append((1 + Int(rng.next() % 70), 1 + Int(rng.next() % 200), 1 + Int(rng.next() % 4096)))
        }
        for (m, n, k) in shapes {
            let a = (0..<(m * k)).map { _ in draw(&rng) }, b = (0..<(n * k)).map { _ in draw(&rng) }
            let ref = reference(a, b, m: m, n: n, k: k)
            let p = pack(a, b, m: m, n: n, k: k)
            for (name, kernel) in Self.vectorKernels {
                XCTAssertEqual(int32Product(p, m: m, n: n, k: k, kernel: kernel), ref, "\(name) \(m)×\(n)×\(k)")
            }
            XCTAssertEqual(int32Product(p, m: m, n: n, k: k, kernel: vitq_qgemm_scalar), ref, "scalar \(m)×\(n)×\(k)")
            // Spot-check the reference itself with Swift integers.
            let (i, j) = (m - 1, n / 2)
            XCTAssertEqual(Int(ref[i * n + j]), (0..<k).reduce(0) { $0 + Int(a[i * k + $1]) * Int(b[j * k + $1]) })
        }
    }

    func testWorstCaseSumsDoNotSaturate() {
        // −128 · −128 · 4096 = 67 108 864, and pairs of +127·−128 that would saturate int16 sums.
        let k = 4096
        let p = pack([Int8](repeating: -128, count: k), [Int8](repeating: -128, count: 2 * k), m: 1, n: 2, k: k)
        XCTAssertEqual(int32Product(p, m: 1, n: 2, k: k, kernel: vitq_qgemm), [67_108_864, 67_108_864])
        let q = pack([Int8](repeating: 127, count: k), [Int8](repeating: -128, count: k), m: 1, n: 1, k: k)
        XCTAssertEqual(int32Product(q, m: 1, n: 1, k: k, kernel: vitq_qgemm), [Int32(127 * -128 * k)])
    }

    /// Packs int16 operands by the documented layout (independently of the C packers): A in panels of
    /// MR rows of int16 pairs, B in blocks of NR columns of int16 pairs, zero padded.
    func packWide(_ a: [Int16], _ b: [Int16], m: Int, n: Int, k: Int) -> Packed {
        let mr = Int(VITQ_QGEMM_MR), nr = Int(VITQ_QGEMM_NR), kp = (k + 1) / 2
        var pa = [Int32](repeating: 0, count: Int(vitq_qgemm_packed_a_size(Int64(m), Int64(k))))
        var pb = [Int16](repeating: 0, count: Int(vitq_qgemm_packed_b_size(Int64(n), Int64(k))))
        for i in 0..<m {
            for p in 0..<kp {
                let lo = a[i * k + 2 * p], hi = 2 * p + 1 < k ? a[i * k + 2 * p + 1] : 0
                pa[(i / mr) * kp * mr + p * mr + i % mr] = Int32(bitPattern: UInt32(UInt16(bitPattern: lo)) | UInt32(UInt16(bitPattern: hi)) << 16)
            }
        }
        for j in 0..<n {
            for p in 0..<(2 * kp) where p < k { pb[((j / nr) * kp * nr + (p / 2) * nr + j % nr) * 2 + p % 2] = b[j * k + p] }
        }
        return Packed(a: pa, b: pb)
    }

    /// Operands as affine quantizers make them (q − zero, |v| ≤ 255): A spanning at most 256 values at
    /// any offset (the VNNI kernel's u8 path, shifted by −min), A spanning more than that, and B beyond
    /// int8 (its int16-pair path). Every kernel equals the product in Swift integers, the VNNI kernel
    /// also with B's quads made once.
    func testAffineOperandsTakeAnExactPath() {
        var rng = SeededRandom(seed: 21)
        func values(_ count: Int, _ lo: Int, _ hi: Int) -> [Int16] {
            (0..<count).map { t in Int16(t % 7 == 0 ? lo : t % 7 == 1 ? hi : lo + Int(rng.next() % UInt64(hi - lo + 1))) }
        }
        let cases: [(String, ClosedRange<Int>, ClosedRange<Int>)] = [
            ("A in [-12, 243]", -12...243, -128...127), ("A in [5, 200]", 5...200, -128...127),
            ("A in [-255, -1]", -255 ... -1, -128...127), ("A in [-255, 255]", -255...255, -128...127),
            ("B in [-12, 243]", -128...127, -12...243), ("both wide", -255...255, -255...255),
        ]
        for (label, ra, rb) in cases {
            for (m, n, k) in [(13, 37, 101), (7, 65, 4096), (12, 32, 16), (1, 1, 3)] {
                let a = values(m * k, ra.lowerBound, ra.upperBound), b = values(n * k, rb.lowerBound, rb.upperBound)
                let p = packWide(a, b, m: m, n: n, k: k)
                var expected = [Int32](repeating: 0, count: m * n)
                for i in 0..<m {
                    for j in 0..<n {
                        var s = 0
                        for t in 0..<k { s += Int(a[i * k + t]) * Int(b[j * k + t]) }
                        expected[i * n + j] = Int32(s)
                    }
                }
                for (name, kernel) in [("scalar", vitq_qgemm_scalar as Kernel)] + Self.vectorKernels {
                    XCTAssertEqual(int32Product(p, m: m, n: n, k: k, kernel: kernel), expected, "\(name) \(label) \(m)×\(n)×\(k)")
                }
                // B's VNNI form made once (as PackedWeight does): only for an int8 B, and the same integers
                // from each VNNI kernel that reads it.
                let vnni = Self.vectorKernels.filter { $0.name != "avx2" }
                guard !vnni.isEmpty else { continue }
                var quads = [Int32](repeating: -1, count: Int(vitq_qgemm_b_quads_size(Int64(n), Int64(k))))
                let written = vitq_qgemm_pack_b_quads_portable(p.b, Int64(n), Int64(k), &quads) != 0
                XCTAssertEqual(written, rb.lowerBound >= -128 && rb.upperBound <= 127, "\(label): B quads written")
                guard written else { continue }
                for (name, kernel) in vnni {
                    var c = [Int32](repeating: -1, count: m * n)
                    c.withUnsafeMutableBufferPointer { cp in
                        quads.withUnsafeBufferPointer { qp in
                            var out = vitq_qgemm_output()
                            out.c = cp.baseAddress; out.ldc = Int64(n); out.b_quads = qp.baseAddress
                            kernel(p.a, p.b, Int64(m), Int64(n), Int64(k), &out)
                        }
                    }
                    XCTAssertEqual(c, expected, "\(name) with B quads, \(label) \(m)×\(n)×\(k)")
                }
            }
        }
    }

    func testEpiloguesAgreeBitForBit() {
        var rng = SeededRandom(seed: 9)
        for (m, n, k) in [(13, 37, 100), (6, 16, 64), (25, 48, 384), (1, 5, 3), (13, 150, 100)] {
            let a = (0..<(m * k)).map { _ in draw(&rng) }, b = (0..<(n * k)).map { _ in draw(&rng) }
            let p = pack(a, b, m: m, n: n, k: k)
            let colScale = Tensor(shape: [n], values: (0..<n).map { _ in Float(1e-4 * (1 + rng.uniform())) })
            let bias = Tensor(shape: [n], values: (0..<n).map { _ in Float(rng.normal()) })
            let outScale = Tensor(shape: [n], values: (0..<n).map { _ in Float(0.5 + rng.uniform()) })
            let ref = reference(a, b, m: m, n: n, k: k)
            for accumulate in [false, true] {
                var results: [[Float]] = []
                for kernel in [vitq_qgemm_scalar] + Self.vectorKernels.map(\.kernel) {
                    var f = (0..<(m * n)).map { Float($0 % 5) }
                    f.withUnsafeMutableBufferPointer { fp in
                        var out = vitq_qgemm_output()
                        out.f = fp.baseAddress; out.ldf = Int64(n); out.accumulate = accumulate ? 1 : 0
                        out.col_scale = UnsafePointer(colScale.data); out.bias = UnsafePointer(bias.data)
                        kernel(p.a, p.b, Int64(m), Int64(n), Int64(k), &out)
                    }
                    results.append(f)
                }
                for r in results.dropFirst() { XCTAssertEqual(r.map(\.bitPattern), results[0].map(\.bitPattern), "f32 epilogue \(m)×\(n)×\(k)") }
                // Against a hand computation from the exact int32 product.
                let idx = m * n - 1, base: Float = accumulate ? Float(idx % 5) : 0
                let expected: Float = base + (Float(ref[idx]) * colScale.data[n - 1] + bias.data[n - 1])
                XCTAssertEqual(results[0][idx], expected, accuracy: 1e-3)
            }
            // Requantisation to int8.
            var qs: [[Int8]] = []
            for kernel in [vitq_qgemm_scalar] + Self.vectorKernels.map(\.kernel) {
                var q = [Int8](repeating: 0, count: m * n)
                q.withUnsafeMutableBufferPointer { qp in
                    var out = vitq_qgemm_output()
                    out.q = qp.baseAddress; out.ldq = Int64(n); out.qmin = -127; out.qmax = 127
                    out.col_scale = UnsafePointer(colScale.data); out.out_scale = UnsafePointer(outScale.data)
                    kernel(p.a, p.b, Int64(m), Int64(n), Int64(k), &out)
                }
                qs.append(q)
            }
            for q in qs.dropFirst() { XCTAssertEqual(q, qs[0]) }
            let v: Float = Float(ref[0]).addingProduct(0, 0) * colScale.data[0]
            let expectedQ: Float = max(-127, min(127, (v * (1 / outScale.data[0])).rounded(.toNearestOrEven)))
            XCTAssertEqual(Int(qs[0][0]), Int(expectedQ))
        }
    }

    /// The per-token epilogue (row_scale, row_bias, then GELU or the residual add) equals the GEMM's
    /// product finished by vitq_per_token_finish at the same level, bit for bit.
    func testPerTokenEpilogueEqualsTheFinishPass() {
        var rng = SeededRandom(seed: 17)
        typealias Finish = (UnsafePointer<Float>, Int64, Int64, Int64, UnsafePointer<Float>, UnsafePointer<Float>?, Int32, Int32,
                            UnsafeMutablePointer<Float>, Int64) -> Void
        let levels: [(String, Kernel, Finish)] = [("scalar", vitq_qgemm_scalar, vitq_per_token_finish_ref)]
            + Self.vectorKernels.map { ($0.name, $0.kernel, vitq_per_token_finish_avx2) }
        for (m, n, k) in [(13, 37, 100), (6, 16, 64), (25, 150, 384), (1, 5, 3)] {
            let a = (0..<(m * k)).map { _ in draw(&rng) }, b = (0..<(n * k)).map { _ in draw(&rng) }
            let p = pack(a, b, m: m, n: n, k: k)
            let colScale = (0..<n).map { _ in Float(1e-4 * (1 + rng.uniform())) }
            let bias = (0..<n).map { _ in Float(rng.normal()) }, steps = (0..<m).map { _ in Float(0.01 + rng.uniform()) }
            let start = (0..<(m * n)).map { _ in Float(rng.normal()) }
            for (name, kernel, finish) in levels {
                for (gelu, accumulate) in [(false, false), (true, false), (false, true)] {
                    var product = [Float](repeating: 0, count: m * n), separate = start, fused = start
                    product.withUnsafeMutableBufferPointer { fp in
                        var out = vitq_qgemm_output()
                        out.f = fp.baseAddress; out.ldf = Int64(n); out.col_scale = UnsafePointer(colScale)
                        kernel(p.a, p.b, Int64(m), Int64(n), Int64(k), &out)
                    }
                    finish(product, Int64(n), Int64(m), Int64(n), steps, bias, gelu ? 1 : 0, accumulate ? 1 : 0, &separate, Int64(n))
                    fused.withUnsafeMutableBufferPointer { fp in
                        var out = vitq_qgemm_output()
                        out.f = fp.baseAddress; out.ldf = Int64(n); out.accumulate = accumulate ? 1 : 0; out.gelu = gelu ? 1 : 0
                        out.col_scale = UnsafePointer(colScale)
                        steps.withUnsafeBufferPointer { sp in
                            bias.withUnsafeBufferPointer { bp in
                                out.row_scale = sp.baseAddress; out.row_bias = bp.baseAddress
                                kernel(p.a, p.b, Int64(m), Int64(n), Int64(k), &out)
                            }
                        }
                    }
                    XCTAssertEqual(fused.map(\.bitPattern), separate.map(\.bitPattern), "\(name) gelu \(gelu) accumulate \(accumulate) \(m)×\(n)×\(k)")
                }
            }
        }
    }

    func testQuantizeAndPackMatchTheScalarRoutines() {
        var rng = SeededRandom(seed: 3)
        for (rows, cols) in [(1, 1), (7, 33), (197, 64), (64, 197), (16, 16), (33, 48), (5, 17)] {
            let ld = cols + 3
            let x: [Float] = (0..<(rows * ld)).map { _ in Float(rng.normal() * 2) }
            for (scale, zero, lo, hi) in [(Float(0.02), Int32(0), Int32(-127), Int32(127)), (0.004, 0, 0, 255), (0.01, 12, 0, 255)] {
                var a1 = [Int32](repeating: 1, count: Int(vitq_qgemm_packed_a_size(Int64(rows), Int64(cols)))), a2 = a1
                vitq_qgemm_quantize_pack_a_avx2(x, Int64(ld), Int64(rows), Int64(cols), scale, zero, lo, hi, &a1)
                vitq_qgemm_quantize_pack_a_ref(x, Int64(ld), Int64(rows), Int64(cols), scale, zero, lo, hi, &a2)
                XCTAssertEqual(a1, a2, "pack A \(rows)×\(cols)")
                for transposed in [Int32(0), 1] {
                    // B is [n, k] = [rows, cols], or its transpose stored [k, n] = [rows, cols].
                    let (n, k) = transposed == 0 ? (rows, cols) : (cols, rows)
                    var b1 = [Int16](repeating: 1, count: Int(vitq_qgemm_packed_b_size(Int64(n), Int64(k)))), b2 = b1
                    vitq_qgemm_quantize_pack_b_avx2(x, Int64(ld), Int64(n), Int64(k), transposed, scale, zero, lo, hi, &b1)
                    vitq_qgemm_quantize_pack_b_ref(x, Int64(ld), Int64(n), Int64(k), transposed, scale, zero, lo, hi, &b2)
                    XCTAssertEqual(b1, b2, "pack B \(n)×\(k) transposed \(transposed)")
                }
            }
        }
    }

    /// The fused epilogue (GELU, then quantize into the next GEMM's packed A) writes the same words
    /// as the separate passes it replaces: float epilogue, vitq_gelu_f32, vitq_qgemm_quantize_pack_a.
    /// Each dispatch variant is compared with the separate passes of the same variant.
    func testGeluPackedEpilogueEqualsTheSeparatePasses() {
        var rng = SeededRandom(seed: 21)
        typealias Pack = (UnsafePointer<Float>, Int64, Int64, Int64, Float, Int32, Int32, Int32, UnsafeMutablePointer<Int32>) -> Void
        for (m, n, k) in [(13, 37, 100), (6, 16, 64), (25, 48, 384), (1, 5, 3), (197, 768, 192), (8, 33, 17)] {
            let a = (0..<(m * k)).map { _ in draw(&rng) }, b = (0..<(n * k)).map { _ in draw(&rng) }
            let p = pack(a, b, m: m, n: n, k: k)
            let colScale = Tensor(shape: [n], values: (0..<n).map { _ in Float(1e-4 * (1 + rng.uniform())) })
            let bias = Tensor(shape: [n], values: (0..<n).map { _ in Float(rng.normal()) })
            for (scale, zero, lo, hi) in [(Float(0.01), Int32(0), Int32(-127), Int32(127)), (0.02, 9, 0, 255)] {
                // The AVX-512 kernel writes through the AVX2 epilogue: the AVX2 passes are its separate passes.
                let variants: [(Kernel, (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int64) -> Void, Pack)] =
                    Self.vectorKernels.map { ($0.kernel, vitq_gelu_f32_avx2, vitq_qgemm_quantize_pack_a_avx2) }
                    + [(vitq_qgemm_scalar, vitq_gelu_f32_ref, vitq_qgemm_quantize_pack_a_ref)]
                for (kernel, gelu, packA) in variants {
                    let size = Int(vitq_qgemm_packed_a_size(Int64(m), Int64(n)))
                    var fused = [Int32](repeating: 7, count: size), separate = fused
                    var f = [Float](repeating: 0, count: m * n)
                    fused.withUnsafeMutableBufferPointer { fp in
                        var out = vitq_qgemm_output()
                        out.gelu = 1; out.pa = fp.baseAddress
                        out.pa_scale = scale; out.pa_zero = zero; out.pa_qmin = lo; out.pa_qmax = hi
                        out.col_scale = UnsafePointer(colScale.data); out.bias = UnsafePointer(bias.data)
                        kernel(p.a, p.b, Int64(m), Int64(n), Int64(k), &out)
                    }
                    f.withUnsafeMutableBufferPointer { fp in
                        var out = vitq_qgemm_output()
                        out.f = fp.baseAddress; out.ldf = Int64(n)
                        out.col_scale = UnsafePointer(colScale.data); out.bias = UnsafePointer(bias.data)
                        kernel(p.a, p.b, Int64(m), Int64(n), Int64(k), &out)
                        gelu(fp.baseAddress, fp.baseAddress, Int64(m * n))
                        packA(fp.baseAddress!, Int64(n), Int64(m), Int64(n), scale, zero, lo, hi, &separate)
                    }
                    XCTAssertEqual(fused, separate, "GELU + pack epilogue \(m)×\(n)×\(k) zero \(zero)")
                }
            }
        }
    }

    /// LayerNorm fused into quantize-and-pack equals LayerNorm then quantize-and-pack, per variant.
    func testLayerNormPackEqualsTheSeparatePasses() {
        var rng = SeededRandom(seed: 22)
        for (rows, dim) in [(1, 8), (7, 33), (197, 192), (13, 768), (5, 17)] {
            let x: [Float] = (0..<(rows * dim)).map { _ in Float(rng.normal() * 3) }
            let gamma: [Float] = (0..<dim).map { _ in Float(1 + rng.normal() * 0.2) }
            let beta: [Float] = (0..<dim).map { _ in Float(rng.normal() * 0.1) }
            for (scale, zero, lo, hi) in [(Float(0.03), Int32(0), Int32(-127), Int32(127)), (0.02, 5, 0, 255)] {
                let size = Int(vitq_qgemm_packed_a_size(Int64(rows), Int64(dim)))
                for avx2 in [true, false] {
                    var fused = [Int32](repeating: 7, count: size), separate = fused
                    var y = [Float](repeating: 0, count: rows * dim)
                    if avx2 {
                        vitq_layernorm_quantize_pack_a_avx2(x, gamma, beta, Int64(rows), Int64(dim), 1e-6, scale, zero, lo, hi, &fused)
                        vitq_layernorm_f32_avx2(x, &y, gamma, beta, Int64(rows), Int64(dim), 1e-6)
                        vitq_qgemm_quantize_pack_a_avx2(y, Int64(dim), Int64(rows), Int64(dim), scale, zero, lo, hi, &separate)
                    } else {
                        vitq_layernorm_quantize_pack_a_ref(x, gamma, beta, Int64(rows), Int64(dim), 1e-6, scale, zero, lo, hi, &fused)
                        vitq_layernorm_f32_ref(x, &y, gamma, beta, Int64(rows), Int64(dim), 1e-6)
                        vitq_qgemm_quantize_pack_a_ref(y, Int64(dim), Int64(rows), Int64(dim), scale, zero, lo, hi, &separate)
                    }
                    XCTAssertEqual(fused, separate, "LayerNorm + pack \(rows)×\(dim) avx2 \(avx2)")
                }
            }
        }
    }

    /// Softmax fused with the quantize-and-pack of the probabilities equals softmax then pack, per variant.
    func testSoftmaxPackEqualsTheSeparatePasses() {
        var rng = SeededRandom(seed: 23)
        for (rows, n) in [(1, 5), (49, 49), (197, 197), (7, 33)] {
            let x: [Float] = (0..<(rows * n)).map { _ in Float(rng.normal() * 4) }
            let size = Int(vitq_qgemm_packed_a_size(Int64(rows), Int64(n)))
            for avx2 in [true, false] {
                var fused = [Int32](repeating: 7, count: size), separate = fused
                var p1 = x, p2 = x
                if avx2 {
                    vitq_softmax_quantize_pack_a_avx2(&p1, Int64(rows), Int64(n), Int64(n), 1 / 255, 0, 0, 255, &fused)
                    vitq_softmax_f32_avx2(&p2, Int64(rows), Int64(n), Int64(n))
                    vitq_qgemm_quantize_pack_a_avx2(p2, Int64(n), Int64(rows), Int64(n), 1 / 255, 0, 0, 255, &separate)
                } else {
                    vitq_softmax_quantize_pack_a_ref(&p1, Int64(rows), Int64(n), Int64(n), 1 / 255, 0, 0, 255, &fused)
                    vitq_softmax_f32_ref(&p2, Int64(rows), Int64(n), Int64(n))
                    vitq_qgemm_quantize_pack_a_ref(p2, Int64(n), Int64(rows), Int64(n), 1 / 255, 0, 0, 255, &separate)
                }
                XCTAssertEqual(p1.map(\.bitPattern), p2.map(\.bitPattern), "softmax \(rows)×\(n) avx2 \(avx2)")
                XCTAssertEqual(fused, separate, "softmax + pack \(rows)×\(n) avx2 \(avx2)")
            }
        }
    }
}
