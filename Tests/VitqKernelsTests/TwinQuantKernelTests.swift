import CVitqKernels
import VitqTensor
import VitqTestSupport
import XCTest

/// The twin uniform kernels: every AVX2 variant equals its scalar reference bit for bit, and the
/// twin pack lays the R1 and R2 integers out exactly as the int8 packer would.
final class TwinQuantKernelTests: XCTestCase {
    func randomParams(_ rng: inout SeededRandom) -> vitq_twin_params {
        let kind = rng.next() % 2 == 0 ? VITQ_TWIN_SOFTMAX : VITQ_TWIN_GELU
        let bits = Int32(2 + rng.next() % 7), shift = Int32(rng.next() % 21)
        let delta1 = Float(1e-4 + rng.uniform() * 0.05)
        return vitq_twin_params(kind: kind, bits: bits, delta1: delta1, shift: shift)
    }

    func values(_ p: vitq_twin_params, _ count: Int, _ rng: inout SeededRandom) -> [Float] {
        TwinTestValues.make(count: count, bits: Int(p.bits), delta1: p.delta1, shift: Int(p.shift), rng: &rng)
    }

    func bits(_ x: [Float]) -> [UInt32] { x.map(\.bitPattern) }

    func testElementwiseKernelsEqualReference() {
        var rng = SeededRandom(seed: 31)
        for trial in 0..<300 {
            let p = randomParams(&rng)
            let n = trial < 40 ? trial : Int(rng.next() % (trial % 10 == 0 ? 3000 : 150))
            let x = values(p, n, &rng)
            var c0 = [UInt8](repeating: 0xAA, count: n), c1 = [UInt8](repeating: 0x55, count: n)
            vitq_twin_encode_ref(x, &c0, Int64(n), p)
            vitq_twin_encode_avx2(x, &c1, Int64(n), p)
            XCTAssertEqual(c0, c1, "encode n=\(n) \(p)")
            XCTAssertTrue(c0.allSatisfy { Int($0) < 1 << p.bits }, "codes fit in \(p.bits) bits")

            // Decode every byte value (including bits above k, which are ignored) and the codes.
            let codes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) } + c0
            var d0 = [Float](repeating: 1, count: codes.count), d1 = [Float](repeating: 2, count: codes.count)
            vitq_twin_decode_ref(codes, &d0, Int64(codes.count), p)
            vitq_twin_decode_avx2(codes, &d1, Int64(codes.count), p)
            XCTAssertEqual(bits(d0), bits(d1), "decode n=\(n) \(p)")

            var f0 = [Float](repeating: 1, count: n), f1 = x
            vitq_twin_fake_quantize_ref(x, &f0, Int64(n), p)
            f1.withUnsafeMutableBufferPointer { vitq_twin_fake_quantize_avx2($0.baseAddress, $0.baseAddress, Int64(n), p) }
            XCTAssertEqual(bits(f0), bits(f1), "fake-quantize (in place) n=\(n) \(p)")
            XCTAssertEqual(bits(f0), bits(Array(d0[n...])), "fake-quantize = decode(encode) n=\(n) \(p)")
        }
    }

    func testTwinPackEqualsReferenceAndInt8Layout() {
        var rng = SeededRandom(seed: 32)
        for trial in 0..<80 {
            let p = randomParams(&rng)
            let m = 1 + Int(rng.next() % 20), k = trial == 0 ? 1 : 1 + Int(rng.next() % 120), lda = k + Int(rng.next() % 3)
            let a = values(p, m * lda, &rng)
            let size = Int(vitq_qgemm_packed_a_size(Int64(m), Int64(k)))
            var lo0 = [Int32](repeating: 7, count: size), hi0 = lo0, lo1 = [Int32](repeating: -7, count: size), hi1 = lo1
            vitq_twin_quantize_pack_a_ref(a, Int64(lda), Int64(m), Int64(k), p, &lo0, &hi0)
            vitq_twin_quantize_pack_a_avx2(a, Int64(lda), Int64(m), Int64(k), p, &lo1, &hi1)
            XCTAssertEqual(lo0, lo1, "lo \(m)×\(k) \(p)")
            XCTAssertEqual(hi0, hi1, "hi \(m)×\(k) \(p)")

            // The same integers from the codes, packed by the int8 packer.
            var codes = [UInt8](repeating: 0, count: m * lda)
            vitq_twin_encode_ref(a, &codes, Int64(m * lda), p)
            let half = 1 << (p.bits - 1)
            let r1 = codes.map { c -> Int8 in
                Int(c) & half != 0 ? 0 : Int8(p.kind == VITQ_TWIN_GELU ? -Int(c) : Int(c))
            }
            let r2 = codes.map { c -> Int8 in Int(c) & half != 0 ? Int8(Int(c) - half) : 0 }
            var lo2 = [Int32](repeating: 1, count: size), hi2 = lo2
            vitq_qgemm_pack_a_s8(r1, Int64(lda), Int64(m), Int64(k), &lo2)
            vitq_qgemm_pack_a_s8(r2, Int64(lda), Int64(m), Int64(k), &hi2)
            XCTAssertEqual(lo0, lo2, "lo layout \(m)×\(k)")
            XCTAssertEqual(hi0, hi2, "hi layout \(m)×\(k)")
        }
    }

    func testCombineEqualsReference() {
        var rng = SeededRandom(seed: 33)
        for trial in 0..<60 {
            let m = 1 + Int(rng.next() % 7), n = 1 + Int(rng.next() % 45), ldc = n + Int(rng.next() % 4), ldf = n + 2
            let shift = Int32(trial % 21)
            let extremes: [Int32] = [.max, .min, 0, -1, 1, 1 << 24 + 1, -(1 << 24) - 1]
            let draw = { (r: inout SeededRandom) -> Int32 in
                r.next() % 5 == 0 ? extremes[Int(r.next() % 7)] : Int32(truncatingIfNeeded: r.next() >> UInt64(r.next() % 40))
            }
            let cLo = (0..<(m * ldc)).map { _ in draw(&rng) }, cHi = (0..<(m * ldc)).map { _ in draw(&rng) }
            let scale = (0..<n).map { _ in Float(rng.uniform() * 1e-3) * (rng.next() % 4 == 0 ? -1 : 1) }
            let bias = (0..<n).map { _ in Float(rng.normal()) }
            for b in [nil, bias] as [[Float]?] {
                var f0 = [Float](repeating: 3, count: m * ldf), f1 = [Float](repeating: 3, count: m * ldf)
                b.withOptionalPointer { bp in
                    vitq_twin_combine_ref(cLo, cHi, Int64(ldc), Int64(m), Int64(n), shift, scale, bp, &f0, Int64(ldf))
                    vitq_twin_combine_avx2(cLo, cHi, Int64(ldc), Int64(m), Int64(n), shift, scale, bp, &f1, Int64(ldf))
                }
                XCTAssertEqual(bits(f0), bits(f1), "combine \(m)×\(n) shift \(shift)")
                for i in 0..<m {
                    for j in 0..<n {
                        let acc = Int64(cLo[i * ldc + j]) + Int64(cHi[i * ldc + j]) << Int64(shift)
                        let want = (b?[j] ?? 0).addingProduct(Float(acc), scale[j])
                        XCTAssertEqual(f0[i * ldf + j].bitPattern, want.bitPattern, "combine [\(i), \(j)]")
                    }
                    XCTAssertEqual(f0[i * ldf + n], 3, "row padding untouched")
                }
            }
        }
    }
}

extension Optional where Wrapped == [Float] {
    /// Runs `body` with a pointer to the array's elements, or nil.
    func withOptionalPointer<R>(_ body: (UnsafePointer<Float>?) -> R) -> R {
        switch self {
        case .none: return body(nil)
        case .some(let a): return a.withUnsafeBufferPointer { body($0.baseAddress) }
        }
    }
}
