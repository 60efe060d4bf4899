import CVitqKernels
import VitqQuant
import VitqTensor
import VitqTestSupport
import XCTest

/// TwinGemm (two integer GEMMs combined with a shift) equals the double-precision reference bit
/// for bit: integers from TwinQuant.integer as doubles, dgemm, one conversion to float, fma.
final class TwinGemmTests: XCTestCase {
    func reference(x: [Float], lda: Int, m: Int, k: Int, quant: TwinQuant, b: [Double], n: Int,
                   colScale: [Float], bias: [Float]?) -> [Float] {
        var a = [Double](repeating: 0, count: m * k), acc = [Double](repeating: 0, count: m * n)
        for i in 0..<m { for p in 0..<k { a[i * k + p] = Double(quant.integer(x[i * lda + p])) } }
        Gemm.dgemmNT(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, c: &acc, ldc: n)
        return (0..<(m * n)).map { (bias?[$0 % n] ?? 0).addingProduct(Float(acc[$0]), colScale[$0 % n]) }
    }

    func run(_ x: [Float], lda: Int, m: Int, quant: TwinQuant, weight: PackedWeight, colScale: [Float], bias: [Float]?, ldy: Int) -> [Float] {
        var y = [Float](repeating: -7, count: m * ldy)
        let call = { (bp: UnsafePointer<Float>?) in
            TwinGemm.run(x, lda: lda, m: m, quant: quant, weight: weight, colScale: colScale, bias: bp, into: &y, ldy: ldy)
        }
        if let bias { bias.withUnsafeBufferPointer { call($0.baseAddress) } } else { call(nil) }
        for i in 0..<m { for j in weight.n..<ldy { XCTAssertEqual(y[i * ldy + j], -7, "padding untouched") } }
        return (0..<(m * weight.n)).map { y[($0 / weight.n) * ldy + $0 % weight.n] }
    }

    func testTwinGemmEqualsDoubleReference() {
        var rng = SeededRandom(seed: 51)
        var shapes: [(Int, Int, Int)] = [(1, 1, 1), (7, 17, 3), (13, 33, 3072), (100, 5, 769), (61, 47, 2049)]
        while shapes.count < 36 { shapes.append((1 + Int(rng.next() % 70), 1 + Int(rng.next() % 60), 1 + Int(rng.next() % 3072))) }
        for (t, (m, n, k)) in shapes.enumerated() {
            let quant = TwinQuant(kind: t % 2 == 0 ? .softmax : .gelu, bits: 4 + t % 5,
                                  delta1: Float(1e-3 + rng.uniform() * 0.02), shift: t % 13)
            let lda = k + t % 3
            let x = TwinTestValues.make(count: m * lda, bits: quant.bits, delta1: quant.delta1, shift: quant.shift, rng: &rng)
            let w = (0..<(n * k)).map { _ in Int8(truncatingIfNeeded: rng.next()) }
            let colScale = (0..<n).map { _ in Float(1e-4 * (0.5 + rng.uniform())) }
            let bias: [Float]? = t % 3 == 0 ? nil : (0..<n).map { _ in Float(rng.normal()) }
            let want = reference(x: x, lda: lda, m: m, k: k, quant: quant, b: w.map(Double.init), n: n, colScale: colScale, bias: bias)
            let got = run(x, lda: lda, m: m, quant: quant, weight: PackedWeight(values: w, n: n, k: k), colScale: colScale,
                          bias: bias, ldy: n + t % 4)
            XCTAssertEqual(got.map(\.bitPattern), want.map(\.bitPattern), "\(m)×\(n)×\(k) \(quant)")
        }
    }

    /// Every magnitude at its maximum: 127·127·4096·2^shift is far beyond int32, exact in int64.
    func testWorstCaseDoesNotOverflow() {
        let k = 4096, n = 2
        for (quant, xv, wv) in [(TwinQuant(kind: .softmax, bits: 8, delta1: 1e-3, shift: 12), Float(1e6), Int8(127)),
                                (TwinQuant(kind: .gelu, bits: 8, delta1: 1e-3, shift: 12), Float(1e6), Int8(-128)),
                                (TwinQuant(kind: .gelu, bits: 8, delta1: 1e-3, shift: 20), Float(1e6), Int8(127))] {
            // Row 0 all in R2 at magnitude 127; row 1 alternates R1 at its extreme and R2 at 127.
            let r1: Float = quant.kind == .gelu ? -1e6 : Float(quant.maxMagnitude) * quant.delta1
            let x = [Float](repeating: xv, count: k) + (0..<k).map { $0 % 2 == 0 ? xv : r1 }
            let w = [Int8](repeating: wv, count: n * k)
            let colScale: [Float] = [1, 0.5]
            let got = run(x, lda: k, m: 2, quant: quant, weight: PackedWeight(values: w, n: n, k: k), colScale: colScale, bias: nil, ldy: n)
            let full = Int64(127) * Int64(wv) * Int64(k) << Int64(quant.shift)
            XCTAssertGreaterThan(abs(full), Int64(Int32.max), "the R2 sum alone overflows int32")
            let mixed = Int64(127) * Int64(wv) * Int64(k / 2) << Int64(quant.shift) + quant.integer(r1) * Int64(wv) * Int64(k / 2)
            XCTAssertEqual(got, [Float(full), Float(full) * 0.5, Float(mixed), Float(mixed) * 0.5], "\(quant)")
            let want = reference(x: x, lda: k, m: 2, k: k, quant: quant, b: w.map(Double.init), n: n, colScale: colScale, bias: nil)
            XCTAssertEqual(got, want)
        }
    }

    /// The attention path: a raw packed B (V [t, dh] packed transposed, as P·V needs) and caller scratch.
    func testRunPackedWithRawPackedB() {
        var rng = SeededRandom(seed: 52)
        for (t, dh) in [(197, 64), (50, 32), (7, 5)] {
            let quant = TwinQuant(kind: .softmax, bits: 8, delta1: Float(sign: .plus, exponent: -7 - 6, significand: 1), shift: 6)
            var p = (0..<(t * t)).map { _ in Float(pow(rng.uniform(), 6)) }
            let v = (0..<(t * dh)).map { _ in Float(Int(rng.next() % 255) - 127) }
            var packedB = [Int16](repeating: 0, count: Int(vitq_qgemm_packed_b_size(Int64(dh), Int64(t))))
            vitq_qgemm_quantize_pack_b(v, Int64(dh), Int64(dh), Int64(t), 1, 1, 0, -128, 127, &packedB)
            let s = TwinGemm.scratchCounts(m: t, n: dh, k: t)
            var lo = [Int32](repeating: 9, count: s.packedA), hi = lo, accLo = [Int32](repeating: 9, count: s.acc), accHi = accLo
            let colScale = [Float](repeating: 0.01, count: dh)
            var y = [Float](repeating: 0, count: t * dh)
            TwinGemm.runPacked(&p, lda: t, m: t, k: t, quant: quant, packedB: packedB, n: dh, packedLo: &lo, packedHi: &hi,
                               accLo: &accLo, accHi: &accHi, colScale: colScale, bias: nil, into: &y, ldy: dh)
            let b = (0..<(dh * t)).map { Double(v[($0 % t) * dh + $0 / t]) }
            let want = reference(x: p, lda: t, m: t, k: t, quant: quant, b: b, n: dh, colScale: colScale, bias: nil)
            XCTAssertEqual(y.map(\.bitPattern), want.map(\.bitPattern), "P·V \(t)×\(dh)")
        }
    }
}
