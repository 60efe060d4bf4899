import CVitqKernels
import Foundation
import VitqTensor
import VitqTestSupport
import XCTest

/// The AVX2 fp32 ops against their scalar references and against double-precision math.
final class Fp32KernelTests: XCTestCase {
    /// Largest error, relative to 1 + |reference|, that the AVX2 transcendental approximations may show.
    static let transcendentalTolerance: Float = 2e-6

    var rng = SeededRandom(seed: 42)

    func randomValues(_ n: Int, scale: Float) -> [Float] { (0..<n).map { _ in rng.symmetric(scale) } }

    func testDispatchUsesAVX2WhenAvailable() {
        XCTAssertEqual(vitq_kernels_use_avx2(), vitq_cpu_has_avx2())
    }

    func testGeluMatchesDoublePrecisionErf() {
        for n in [1, 7, 8, 9, 1000, 4099] {
            let x = randomValues(n, scale: 12) + [0, -0.0, 1e-8, -1e-8, 40, -40, 5.5, -5.5]
            var ref = [Float](repeating: 0, count: x.count), fast = ref
            vitq_gelu_f32_ref(x, &ref, Int64(x.count))
            vitq_gelu_f32(x, &fast, Int64(x.count))
            for i in 0..<x.count {
                let exact = Float(0.5 * Double(x[i]) * (1 + erf(Double(x[i]) / 2.0.squareRoot())))
                XCTAssertEqual(ref[i], exact, accuracy: 1e-6 * (1 + abs(exact)), "ref gelu(\(x[i]))")
                XCTAssertEqual(fast[i], exact, accuracy: Self.transcendentalTolerance * (1 + abs(exact)), "dispatched gelu(\(x[i]))")
            }
        }
    }

    func testSoftmaxAVX2MatchesReference() {
        for (rows, n) in [(1, 1), (3, 7), (5, 197), (2, 198), (4, 49), (1, 1000)] {
            let x = randomValues(rows * n, scale: 20)
            var ref = x, fast = x
            vitq_softmax_f32_ref(&ref, Int64(rows), Int64(n), Int64(n))
            vitq_softmax_f32(&fast, Int64(rows), Int64(n), Int64(n))
            for r in 0..<rows {
                var sum = 0.0
                for i in 0..<n {
                    XCTAssertEqual(fast[r * n + i], ref[r * n + i], accuracy: Self.transcendentalTolerance)
                    sum += Double(fast[r * n + i])
                }
                XCTAssertEqual(sum, 1, accuracy: 1e-5)
            }
        }
    }

    func testLayerNormAVX2MatchesReference() {
        for (rows, dim) in [(1, 1), (3, 7), (5, 192), (2, 768), (3, 1030)] {
            let x = randomValues(rows * dim, scale: 3).map { $0 + 0.7 }
            let g = randomValues(dim, scale: 1), b = randomValues(dim, scale: 1)
            var ref = [Float](repeating: 0, count: x.count), fast = ref
            vitq_layernorm_f32_ref(x, &ref, g, b, Int64(rows), Int64(dim), 1e-6)
            vitq_layernorm_f32(x, &fast, g, b, Int64(rows), Int64(dim), 1e-6)
            for i in 0..<x.count { XCTAssertEqual(fast[i], ref[i], accuracy: 2e-5 * (1 + abs(ref[i]))) }
        }
        // A constant row normalises to beta.
        var y = [Float](repeating: 9, count: 4)
        vitq_layernorm_f32([2, 2, 2, 2], &y, [1, 1, 1, 1], [0.5, -0.5, 1, 0], 1, 4, 1e-6)
        XCTAssertEqual(y, [0.5, -0.5, 1, 0])
    }

    func testAddAndBias() {
        var y: [Float] = Array(repeating: 1, count: 19)
        vitq_add_f32(&y, (0..<19).map(Float.init), 19)
        XCTAssertEqual(y, (0..<19).map { Float($0) + 1 })
        var m = [Float](repeating: 0, count: 2 * 9)
        vitq_add_bias_f32(&m, (0..<9).map(Float.init), 2, 9, 9)
        XCTAssertEqual(Array(m[9..<18]), (0..<9).map(Float.init))
    }

    func testHalfAndBFloat16Conversion() {
        // Hand-computed bit patterns.
        let half: [UInt16] = [0x3C00, 0xC000, 0x0000, 0x8000, 0x7BFF, 0x0001, 0x3555, 0x7C00]
        var out = [Float](repeating: 0, count: half.count)
        vitq_f16_to_f32(half, &out, Int64(half.count))
        XCTAssertEqual(Array(out[0..<5]), [1, -2, 0, -0.0, 65504])
        XCTAssertEqual(out[5], Float(sign: .plus, exponent: -24, significand: 1))
        XCTAssertEqual(out[6], 0.333251953125)
        XCTAssertEqual(out[7], .infinity)
        var bf = [Float](repeating: 0, count: 2)
        vitq_bf16_to_f32([0x3F80, 0xC0A0], &bf, 2)
        XCTAssertEqual(bf, [1, -5])
    }

    func testParallelChunksCoverRangeOnce() {
        Parallel.threads = 2
        let hits = UnsafeMutablePointer<Int32>.allocate(capacity: 1001)
        hits.initialize(repeating: 0, count: 1001)
        defer { hits.deallocate() }
        Parallel.forChunks(1001, minChunk: 3) { r in for i in r { hits[i] += 1 } }
        XCTAssertTrue((0..<1001).allSatisfy { hits[$0] == 1 })
    }

    func testBatchedGemmMatchesScalarProduct() {
        let m = 5, n = 7, k = 9
        let a = randomValues(m * k, scale: 1), b = randomValues(n * k, scale: 1)
        var c = [Float](repeating: 0, count: m * n)
        Gemm.sgemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, transB: true, c: &c, ldc: n)
        for i in 0..<m { for j in 0..<n {
            var s: Double = 0
            for p in 0..<k { s += Double(a[i * k + p]) * Double(b[j * k + p]) }
            XCTAssertEqual(Double(c[i * n + j]), s, accuracy: 1e-5)
        } }
    }
}
