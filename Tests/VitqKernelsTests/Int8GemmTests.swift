import CVitqKernels
import VitqTensor
import XCTest

/// The exact int8 GEMM: the AVX2 and scalar packed kernels equal the plain reference bit for bit.
final class Int8GemmTests: XCTestCase {
    /// Packs both operands and runs the packed kernel `kernel`.
    func packedProduct(_ a: [Int8], _ b: [Int8], m: Int, n: Int, k: Int,
                       kernel: (UnsafePointer<Int32>, UnsafePointer<Int16>, Int64, Int64, Int64, UnsafeMutablePointer<Int32>, Int64) -> Void) -> [Int32] {
        var pa = [Int32](repeating: 0, count: Int(vitq_gemm_packed_a_size(Int64(m), Int64(k))))
        var pb = [Int16](repeating: 0, count: Int(vitq_gemm_packed_b_size(Int64(n), Int64(k))))
        vitq_gemm_pack_a_s8(a, Int64(k), Int64(m), Int64(k), &pa)
        vitq_gemm_pack_b_s8(b, Int64(k), Int64(n), Int64(k), &pb)
        var c = [Int32](repeating: -1, count: m * n)
        kernel(pa, pb, Int64(m), Int64(n), Int64(k), &c, Int64(n))
        return c
    }

    func reference(_ a: [Int8], _ b: [Int8], m: Int, n: Int, k: Int) -> [Int32] {
        var c = [Int32](repeating: 0, count: m * n)
        vitq_gemm_s8s8s32_ref(a, Int64(k), b, Int64(k), Int64(m), Int64(n), Int64(k), &c, Int64(n))
        return c
    }

    func testPackedKernelsEqualTheReferenceOnRandomShapes() {
        var rng = SeededRandom(seed: 7)
        var shapes: [(Int, Int, Int)] = [(1, 1, 1), (4, 16, 2), (5, 17, 3), (3, 15, 4095), (2, 33, 4096), (70, 1, 4096)]
        while shapes.count < 60 {
            shapes.append((1 + Int(rng.next() % 70), 1 + Int(rng.next() % 70), 1 + Int(rng.next() % 4096)))
        }
        for (m, n, k) in shapes {
            // Full range, with the extremes over-represented.
            let draw: () -> Int8 = {
                switch rng.next() % 8 { case 0: return -128; case 1: return 127; default: return Int8(truncatingIfNeeded: rng.next()) }
            }
            let a = (0..<(m * k)).map { _ in draw() }, b = (0..<(n * k)).map { _ in draw() }
            let ref = reference(a, b, m: m, n: n, k: k)
            XCTAssertEqual(packedProduct(a, b, m: m, n: n, k: k, kernel: vitq_gemm_s8s8s32_packed), ref, "dispatched \(m)×\(n)×\(k)")
            XCTAssertEqual(packedProduct(a, b, m: m, n: n, k: k, kernel: vitq_gemm_s8s8s32_packed_scalar), ref, "scalar \(m)×\(n)×\(k)")
            // Spot-check the reference itself with Swift integers.
            let (i, j) = (m - 1, n / 2)
            XCTAssertEqual(Int(ref[i * n + j]), (0..<k).reduce(0) { $0 + Int(a[i * k + $1]) * Int(b[j * k + $1]) })
        }
    }

    func testWorstCaseSumsDoNotSaturate() {
        // −128 · −128 · 4096 = 67 108 864, and pairs of +127·−128 that would saturate int16 sums.
        let k = 4096
        let c = packedProduct([Int8](repeating: -128, count: k), [Int8](repeating: -128, count: 2 * k), m: 1, n: 2, k: k,
                              kernel: vitq_gemm_s8s8s32_packed)
        XCTAssertEqual(c, [67_108_864, 67_108_864])
        let mixed = packedProduct([Int8](repeating: 127, count: k), [Int8](repeating: -128, count: k), m: 1, n: 1, k: k,
                                  kernel: vitq_gemm_s8s8s32_packed)
        XCTAssertEqual(mixed, [Int32(127 * -128 * k)])
    }
}
