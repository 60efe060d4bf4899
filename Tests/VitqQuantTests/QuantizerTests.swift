import CVitqKernels
import VitqQuant
import VitqTensor
import XCTest

/// The quantizers: grids, round half to even, clamping, affine parameters, and the AVX2
/// kernels against the scalar references.
final class QuantizerTests: XCTestCase {
    func testGrids() {
        XCTAssertEqual(QuantScheme(bits: 8, signed: true, narrow: true).qmin, -127)
        XCTAssertEqual(QuantScheme(bits: 8, signed: true, narrow: false).qmin, -128)
        XCTAssertEqual(QuantScheme(bits: 8, signed: true).qmax, 127)
        XCTAssertEqual(QuantScheme(bits: 8, signed: false).qmax, 255)
        XCTAssertEqual(QuantScheme(bits: 4, signed: true, narrow: true).qmin, -7)
        XCTAssertEqual(QuantScheme(bits: 8, signed: true, narrow: true).symmetricScale(maxAbs: 2.54), 0.02)
    }

    func testRoundHalfToEvenAndClamp() {
        // x / 1 at exact halves: 0.5 → 0, 1.5 → 2, 2.5 → 2, −0.5 → 0, −1.5 → −2; out of range clamps.
        let x: [Float] = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 200, -200, 126.5, -127.5]
        let expectedNarrow: [Int8] = [0, 2, 2, 0, -2, -2, 127, -127, 126, -127]
        var q = [Int8](repeating: 0, count: x.count)
        vitq_quantize_s8(x, &q, Int64(x.count), 1, 0, -127, 127)
        XCTAssertEqual(q, expectedNarrow)
        vitq_quantize_s8(x, &q, Int64(x.count), 1, 0, -128, 127)
        XCTAssertEqual(q.last, -128)
        // Affine: zero point 10 shifts the grid; the clamp applies after the shift.
        let t = TensorQuant(scheme: QuantScheme(bits: 8, signed: false), granularity: .perTensor, scales: [0.5], zeroPoints: [10])
        var y = [Float](repeating: 0, count: 3)
        t.fakeQuantize([-5.0, -6.0, 1.26], count: 3, into: &y)
        XCTAssertEqual(y, [-5.0, -5.0, 1.5]) // −6 clamps at q = 0; 1.26 → rne(2.52) = 3
    }

    func testAffineParameters() {
        let s = QuantScheme(bits: 8, signed: false)
        let (scale, zero) = s.affine(min: -1, max: 3)
        XCTAssertEqual(scale, 4 / 255, accuracy: 1e-9)
        XCTAssertEqual(zero, 64) // rne(0 − (−1)/(4/255)) = rne(63.75)
        // Zero is exactly representable.
        let t = TensorQuant(scheme: s, granularity: .perTensor, scales: [scale], zeroPoints: [zero])
        var y: [Float] = [1]
        t.fakeQuantize([0], count: 1, into: &y)
        XCTAssertEqual(y, [0])
    }

    func testVectorisedKernelsEqualTheReferences() {
        var rng = SeededRandom(seed: 11)
        for n in [1, 7, 8, 15, 16, 17, 100, 1000] {
            var x: [Float] = (0..<n).map { _ in Float(rng.normal()) * 3 }
            if n > 4 { x[0] = 0.5; x[1] = -2.5; x[2] = 1e9; x[3] = -1e9 }
            for (scale, zero, lo, hi) in [(Float(0.05), Int32(0), Int32(-127), Int32(127)), (0.03, 17, 0, 255), (0.1, -3, -128, 127)] {
                var a = [Int8](repeating: 0, count: n), b = a
                if hi <= 127 {
                    vitq_quantize_s8_avx2(x, &a, Int64(n), scale, zero, lo, hi)
                    vitq_quantize_s8_ref(x, &b, Int64(n), scale, zero, lo, hi)
                    XCTAssertEqual(a, b, "quantize n=\(n)")
                    var da = [Float](repeating: 0, count: n), db = da
                    vitq_dequantize_s8_avx2(a, &da, Int64(n), scale, zero)
                    vitq_dequantize_s8_ref(a, &db, Int64(n), scale, zero)
                    XCTAssertEqual(da, db, "dequantize n=\(n)")
                }
                var fa = [Float](repeating: 0, count: n), fb = fa
                vitq_fake_quantize_f32_avx2(x, &fa, Int64(n), scale, zero, lo, hi)
                vitq_fake_quantize_f32_ref(x, &fb, Int64(n), scale, zero, lo, hi)
                XCTAssertEqual(fa.map(\.bitPattern), fb.map(\.bitPattern), "fake-quantize n=\(n)")
            }
        }
    }

    func testPerChannelWeightQuantization() {
        // Power-of-two scales keep x · (1/Δ) exact, so the halves below are true ties.
        let w = Tensor(shape: [2, 3], values: [0.15625, -0.1953125, 1, 1.5, 3.25, -300])
        let q = QuantizedWeight(weight: w, bias: nil, quant: TensorQuant(
            scheme: QuantScheme(bits: 8, signed: true, narrow: true), granularity: .perChannel, scales: [1.0 / 64, 0.5]))
        XCTAssertEqual(q.values, [10, -12, 64, 3, 6, -127]) // −12.5 → −12 and 6.5 → 6 (half to even); −600 clamps
        XCTAssertEqual(q.dequantized().array, [0.15625, -0.1875, 1, 1.5, 3, -63.5])
    }
}
