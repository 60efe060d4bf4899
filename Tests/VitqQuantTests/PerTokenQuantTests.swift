import CVitqKernels
import Foundation
import VitqModels
import VitqQuant
import VitqTensor
import VitqTestSupport
import XCTest

/// Dynamic per-token inputs (``PerTokenQuant``): the integer engine against a hand computation
/// and against the exact reference, and the property that makes them worth having.
final class PerTokenQuantTests: XCTestCase {
    let scheme = QuantScheme(bits: 8, signed: true, narrow: false)

    /// A linear op of `n` outputs and `k` inputs with a per-channel int8 weight and a bias.
    func layer(n: Int, k: Int, seed: UInt64) -> (Int8Linear, FakeQuantLinear, QuantizedWeight) {
        var rng = SeededRandom(seed: seed)
        let w = Tensor(shape: [n, k], values: (0..<(n * k)).map { _ in Float(rng.normal()) * 0.2 })
        let b = Tensor(shape: [n], values: (0..<n).map { _ in Float(rng.normal()) })
        let wq = QuantizedWeight(weight: w, bias: b, quant: TensorQuant(
            scheme: QuantScheme(bits: 8, signed: true, narrow: true), granularity: .perChannel,
            scales: (0..<n).map { o in Ops.maxAbs(w.data + o * k, cols: k) / 127 }))
        return (Int8Linear(weight: wq, input: .perToken(scheme)), FakeQuantLinear(weight: wq, input: .perToken(scheme)), wq)
    }

    func rows(_ m: Int, _ k: Int, seed: UInt64) -> [Float] {
        var rng = SeededRandom(seed: seed)
        return (0..<(m * k)).map { _ in Float(rng.normal()) * 3 }
    }

    func forward(_ op: any LinearOp, _ x: [Float], rows m: Int) -> [Float] {
        var y = [Float](repeating: 0, count: m * op.outFeatures)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { op.forward(xp.baseAddress!, rows: m, into: $0.baseAddress!) } }
        return y
    }

    func testEngineEqualsTheReferenceAndAHandComputation() {
        // 37 rows (a partial row panel), odd k and n (partial k pair and column block).
        let m = 37, k = 45, n = 19
        let (engine, reference, wq) = layer(n: n, k: k, seed: 1)
        var x = rows(m, k, seed: 2)
        for c in 0..<k { x[5 * k + c] = 0 }   // an all-zero row
        x[7 * k + 3] = 500                    // an outlier token
        let y = forward(engine, x, rows: m)
        XCTAssertEqual(y.map(\.bitPattern), forward(reference, x, rows: m).map(\.bitPattern), "engine = exact reference, bit for bit")
        // By hand, in double: Δ_r = max|x_r| / 127, q = round-half-even(x/Δ_r), y = Δ_r·Δw_j·Σ q·w + b.
        for r in 0..<m {
            let row = x[(r * k)..<((r + 1) * k)]
            let mx = Double(row.map { abs($0) }.max()!)
            let step = mx > 0 ? mx / 127 : 1
            for j in 0..<n {
                var acc = 0.0
                for c in 0..<k { acc += (Double(x[r * k + c]) / step).rounded(.toNearestOrEven) * Double(wq.values[j * k + c]) }
                let want = acc * step * Double(wq.scale(j)) + Double(wq.bias!.data[j])
                XCTAssertEqual(Double(y[r * n + j]), want, accuracy: 1e-4 * max(1, abs(want)), "row \(r) col \(j)")
            }
        }
        // The all-zero row gives the bias exactly.
        XCTAssertEqual(Array(y[(5 * n)..<(6 * n)]), wq.bias!.array)
    }

    func testAnOutlierTokenLeavesTheOtherTokensAlone() {
        let m = 20, k = 64, n = 32
        let (engine, _, _) = layer(n: n, k: k, seed: 3)
        let x = rows(m, k, seed: 4)
        var spiked = x
        spiked[2 * k + 10] = 1000
        let a = forward(engine, x, rows: m), b = forward(engine, spiked, rows: m)
        for r in 0..<m where r != 2 {
            XCTAssertEqual(Array(a[(r * n)..<((r + 1) * n)]), Array(b[(r * n)..<((r + 1) * n)]), "row \(r)")
        }
        // A per-tensor quantizer sized for the outlier rounds every other token far more coarsely.
        let perTensor = Int8Linear(weight: engine.weight, input: .uniform(TensorQuant(scheme: scheme, granularity: .perTensor, scales: [1000 / 127])))
        let exact = forward(Linear(weight: engine.weight.dequantized(), bias: engine.weight.bias), x, rows: m)
        let c = forward(perTensor, spiked, rows: m)
        let others = (0..<m).filter { $0 != 2 }.flatMap { r in (0..<n).map { r * n + $0 } }
        let errTok = relativeError(others.map { b[$0] }, others.map { exact[$0] })
        let errTen = relativeError(others.map { c[$0] }, others.map { exact[$0] })
        XCTAssertLessThan(errTok * 20, errTen, "per-token \(errTok) vs per-tensor \(errTen)")
    }

    func testBlockwisePackingEqualsTheSeparatePasses() {
        // 3 images of 197 tokens: several 8-panel blocks per thread and a partial last panel.
        let m = 591, k = 45, n = 19
        var x = rows(m, k, seed: 8)
        x[100 * k + 7] = 400   // an outlier token
        var rng = SeededRandom(seed: 9)
        let norm = LayerNorm(weight: Tensor(shape: [k], values: (0..<k).map { _ in 1 + Float(rng.normal()) * 0.3 }),
                             bias: Tensor(shape: [k], values: (0..<k).map { _ in Float(rng.normal()) * 0.2 }), eps: 1e-6)
        var normalised = [Float](repeating: 0, count: m * k)
        norm.forward(x, rows: m, into: &normalised)
        let size = Int8Gemm.packedASize(m: m, k: k)
        for (input, layerNorm) in [(x, nil), (normalised, norm)] {
            // Separate passes: (LayerNorm,) steps and scaled rows, then the step-1 packing.
            var steps = [Float](repeating: 0, count: m), scaled = [Float](repeating: 0, count: m * k)
            PerTokenQuant.scale(input, rows: m, cols: k, ld: k, scheme: scheme, steps: &steps, scaled: &scaled)
            var want = [Int32](repeating: 0, count: size)
            Int8Gemm.quantizePackA(scaled, lda: k, m: m, k: k, quant: TensorQuant(scheme: scheme, granularity: .perTensor, scales: [1]), into: &want)
            var gotSteps = [Float](repeating: -1, count: m), got = [Int32](repeating: 7, count: size)
            Int8Gemm.perTokenQuantizePackA(layerNorm == nil ? input : x, lda: k, m: m, k: k, scheme: scheme, norm: layerNorm,
                                           steps: &gotSteps, into: &got)
            XCTAssertEqual(gotSteps.map(\.bitPattern), steps.map(\.bitPattern), "LayerNorm: \(layerNorm != nil)")
            XCTAssertEqual(got, want, "LayerNorm: \(layerNorm != nil)")
        }
        // The engine's LayerNorm-fused entry equals the reference on the normalised rows.
        let (engine, reference, _) = layer(n: n, k: k, seed: 10)
        var y = [Float](repeating: 0, count: m * n)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { engine.forward(normalizing: xp.baseAddress!, with: norm, rows: m, into: $0.baseAddress!) } }
        XCTAssertEqual(y.map(\.bitPattern), forward(reference, normalised, rows: m).map(\.bitPattern))
    }

    func testVectorisedKernelsEqualTheReferences() throws {
        guard vitq_cpu_has_avx2() != 0 else { return XCTFail("the AVX2 per-token kernels need an AVX2+FMA CPU to be tested, and this one has none") }
        let m = 11, k = 37, ld = 40
        var x = rows(m, ld, seed: 5)
        for c in 0..<k { x[2 * ld + c] = 0 }          // an all-zero row: step 1
        x[3 * ld + 4] = .infinity                      // a non-finite maximum: step 1
        x[4 * ld + 30] = .nan                          // a NaN is skipped by the maximum
        x[6 * ld + 36] = -250                          // the maximum in the scalar tail
        var s1 = [Float](repeating: 0, count: m), s2 = s1
        var o1 = [Float](repeating: 0, count: m * k), o2 = o1
        vitq_per_token_scale_ref(x, Int64(ld), Int64(m), Int64(k), 127, &s1, &o1)
        vitq_per_token_scale_avx2(x, Int64(ld), Int64(m), Int64(k), 127, &s2, &o2)
        XCTAssertEqual(s1.map(\.bitPattern), s2.map(\.bitPattern))
        XCTAssertEqual(o1.map(\.bitPattern), o2.map(\.bitPattern))
        XCTAssertEqual([s1[2], s1[3], s1[6]], [1, 1, 250 / 127])
        let n = 21, bias = (0..<n).map { Float($0) - 7.5 }
        let v = rows(m, n, seed: 6), residual = rows(m, n, seed: 7)
        for b in [bias, nil] {
            for (gelu, acc) in [(0, 0), (1, 0), (0, 1)] {
                var y1 = acc == 1 ? residual : v, y2 = y1
                vitq_per_token_finish_ref(v, Int64(n), Int64(m), Int64(n), s1, b, Int32(gelu), Int32(acc), &y1, Int64(n))
                vitq_per_token_finish_avx2(v, Int64(n), Int64(m), Int64(n), s1, b, Int32(gelu), Int32(acc), &y2, Int64(n))
                // GELU's AVX2 lanes approximate erf, its scalar reference calls erff: equal only without GELU.
                if gelu == 0 { XCTAssertEqual(y1.map(\.bitPattern), y2.map(\.bitPattern), "accumulate \(acc)") }
                // The fused GELU and residual add equal the separate passes (dispatched, as the engine runs them).
                var plain = v
                vitq_per_token_finish(v, Int64(n), Int64(m), Int64(n), s1, b, 0, 0, &plain, Int64(n))
                var fused = acc == 1 ? residual : v
                vitq_per_token_finish(v, Int64(n), Int64(m), Int64(n), s1, b, Int32(gelu), Int32(acc), &fused, Int64(n))
                if gelu == 1 { vitq_gelu_f32(plain, &plain, Int64(m * n)) }
                if acc == 1 { var r = residual; vitq_add_f32(&r, plain, Int64(m * n)); plain = r }
                XCTAssertEqual(fused.map(\.bitPattern), plain.map(\.bitPattern), "gelu \(gelu) accumulate \(acc): fused = separate")
            }
        }
    }
}
