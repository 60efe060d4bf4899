import CVitqKernels
import VitqQuant
import VitqTensor
import VitqTestSupport
import XCTest

/// The twin uniform quantizer: codes, grids and error bounds, and the twin GEMM against an
/// independent double-precision reference, bit for bit.
final class TwinQuantTests: XCTestCase {
    func randomQuant(_ rng: inout SeededRandom, kind: TwinKind? = nil) -> TwinQuant {
        TwinQuant(kind: kind ?? (rng.next() % 2 == 0 ? .softmax : .gelu), bits: 2 + Int(rng.next() % 7),
                  delta1: Float(1e-4 + rng.uniform() * 0.05), shift: Int(rng.next() % 21))
    }

    func values(_ q: TwinQuant, _ count: Int, _ rng: inout SeededRandom) -> [Float] {
        TwinTestValues.make(count: count, bits: q.bits, delta1: q.delta1, shift: q.shift, rng: &rng)
    }

    /// x̂ from an integer in units of Δ1 (exact in double, one rounding to float).
    func image(_ integer: Int64, _ q: TwinQuant) -> Float { Float(Double(integer) * Double(q.delta1)) }

    func testRoundTripAndIntegers() {
        var rng = SeededRandom(seed: 41)
        for _ in 0..<200 {
            let q = randomQuant(&rng), n = Int(rng.next() % 200)
            let x = values(q, n, &rng)
            var codes = [UInt8](repeating: 0, count: n), d = [Float](repeating: 1, count: n), f = [Float](repeating: 2, count: n)
            q.encode(x, count: n, into: &codes)
            q.decode(codes, count: n, into: &d)
            q.fakeQuantize(x, count: n, into: &f)
            XCTAssertEqual(d.map(\.bitPattern), f.map(\.bitPattern), "decode(encode(x)) = fakeQuantize(x), \(q)")
            for i in 0..<n {
                XCTAssertEqual(q.integer(code: codes[i]), q.integer(x[i]), "integer of x = integer of its code, x = \(x[i]), \(q)")
                XCTAssertEqual(image(q.integer(x[i]), q).bitPattern, f[i].bitPattern, "x̂ = integer·Δ1, x = \(x[i]), \(q)")
            }
        }
    }

    func testEveryCodeDecodesToAGridValue() {
        for kind in [TwinKind.softmax, .gelu] {
            for bits in 2...8 {
                for shift in [0, 1, 5, 12, 20] {
                    let q = TwinQuant(kind: kind, bits: bits, delta1: 0.0123, shift: shift)
                    XCTAssertEqual(q.delta2, q.delta1 * Float(1 << shift), "Δ2/Δ1 is exactly 2^shift")
                    XCTAssertEqual(q.delta2 / q.delta1, Float(1 << shift))
                    let codes = (0..<(1 << bits)).map { UInt8($0) }
                    var x = [Float](repeating: 0, count: codes.count)
                    q.decode(codes, count: codes.count, into: &x)
                    for (c, v) in zip(codes, x) {
                        let r2 = Int(c) >> (bits - 1) == 1, mag = Float(Int(c) & q.maxMagnitude)
                        let want = r2 ? mag * q.delta2 : (kind == .gelu ? 0 - mag : mag) * q.delta1
                        XCTAssertEqual(v.bitPattern, want.bitPattern, "code \(c) of \(q)")
                        XCTAssertEqual(v.bitPattern, image(q.integer(code: c), q).bitPattern)
                        if r2 { XCTAssertEqual(q.integer(code: c) % (Int64(1) << shift), 0, "R2 integers are multiples of 2^shift") }
                    }
                }
            }
        }
    }

    /// |x − x̂| ≤ Δ/2 of the chosen range inside the representable range (plus float rounding of x/Δ).
    func testErrorIsHalfAStepOfTheChosenRange() {
        var rng = SeededRandom(seed: 42)
        for _ in 0..<200 {
            let q = randomQuant(&rng), qmax = Float(q.maxMagnitude)
            let lo: Float = q.kind == .gelu ? -(qmax + 0.5) * q.delta1 : 0, hi = (qmax + 0.5) * q.delta2
            let x = (0..<64).map { _ in lo + Float(rng.uniform()) * (hi - lo) }.filter { $0 < hi }
            var codes = [UInt8](repeating: 0, count: x.count), y = [Float](repeating: 0, count: x.count)
            q.encode(x, count: x.count, into: &codes)
            q.fakeQuantize(x, count: x.count, into: &y)
            for i in 0..<x.count {
                let inR2 = Int(codes[i]) >> (q.bits - 1) == 1
                let step = inR2 ? q.delta2 : q.delta1
                XCTAssertLessThanOrEqual(abs(x[i] - y[i]), step / 2 * (1 + 1e-5) + 4 * x[i].ulp, "x = \(x[i]), \(q)")
                switch q.kind {
                case .gelu:
                    XCTAssertEqual(inR2, x[i] >= 0, "gelu: negatives in R1, the rest in R2")
                    if x[i] < 0 { XCTAssertLessThanOrEqual(y[i], 0) }
                case .softmax:
                    // R1 is used exactly when it represents the value without clamping.
                    XCTAssertEqual(inR2, (x[i] * (1 / q.delta1)).rounded(.toNearestOrEven) > qmax)
                    if x[i] < qmax * q.delta1 { XCTAssertFalse(inR2, "small softmax values land in R1") }
                    if x[i] > (qmax + 1) * q.delta1 { XCTAssertTrue(inR2) }
                }
            }
        }
    }

    /// PTQ4ViT's softmax setting: Δ2 = 1/2^(k−1) fixed covers [0, 1), Δ1 = Δ2/2^m resolves small probabilities.
    func testSoftmaxConfigurationCoversTheUnitInterval() {
        var rng = SeededRandom(seed: 43)
        for bits in 3...8 {
            for shift in 0...8 {
                let d2 = Float(sign: .plus, exponent: -(bits - 1), significand: 1)
                let q = TwinQuant(kind: .softmax, bits: bits, delta1: Float(sign: .plus, exponent: -shift, significand: d2), shift: shift)
                XCTAssertEqual(q.delta2, d2)
                let x: [Float] = (0..<500).map { _ in Float(rng.uniform()) } + [0, 1 - d2 / 2, Float(1).nextDown, q.delta1 / 2, 3 * q.delta1]
                var y = [Float](repeating: 0, count: x.count)
                q.fakeQuantize(x, count: x.count, into: &y)
                for (v, r) in zip(x, y) {
                    XCTAssertLessThanOrEqual(abs(v - r), v <= 1 - d2 / 2 ? d2 / 2 : d2, "x = \(v), \(q)")
                    if v < Float(q.maxMagnitude) * q.delta1 { XCTAssertLessThanOrEqual(abs(v - r), q.delta1 / 2 * (1 + 1e-6), "R1 resolves x = \(v)") }
                }
            }
        }
    }
}
