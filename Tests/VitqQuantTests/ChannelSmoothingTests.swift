import VitqFormats
import VitqModels
import VitqQuant
import VitqTensor
import VitqTestSupport
import XCTest

/// Channel smoothing is a reparameterisation: the smoothed float model computes the same
/// logits, its smoothed inputs have the ranges the formula says, and the factors balance the
/// activation and weight maxima as SmoothQuant's s_c = max|X_c|^α / max|W_c|^(1−α).
final class ChannelSmoothingTests: XCTestCase {
    func testSmoothedModelIsTheSameFunctionWithFlatterInputs() throws {
        try Fixtures.require()
        let vit = try VisionTransformer(path: Fixtures.vitTiny)
        let images = try NpyArray(path: Fixtures.even500Images, expect: .uint8)
        // Two real images, normalised the simple way (the transform does not care how).
        let s = vit.config.imgSize, plane = s * s
        let x = Tensor(zeros: [2, 3, s, s])
        let raw = images.bytes.bindMemory(to: UInt8.self)
        for i in 0..<2 { for p in 0..<plane { for c in 0..<3 { x.data[(i * 3 + c) * plane + p] = (Float(raw[(i * plane + p) * 3 + c]) / 255 - 0.5) / 0.5 } } }
        let ops = ChannelSmoothing.ops(vit, layerNorm: true, gelu: true)
        let ranges = try ChannelSmoothing.inputRanges(vit, ops: ops, images: 0..<2, batch: 1) { r in
            let t = Tensor(zeros: [r.count, 3, s, s])
            t.data.update(from: x.data + r.lowerBound * 3 * plane, count: r.count * 3 * plane)
            return t
        }
        let maxima = ranges.mapValues(Self.maxAbs)
        XCTAssertEqual(Set(maxima.keys), Set(ops))
        XCTAssertTrue(ops.contains("blocks.7.mlp.fc2") && ops.contains("head"))
        let smooth = ChannelSmoothing.apply(vit, ranges: ranges, alpha: 0.5, geluAlpha: 0.5)
        let a = vit.forward(x).array, b = smooth.forward(x).array
        XCTAssertLessThan(relativeError(b, a), 1e-4, "the same function")
        // After smoothing, the spread of the per-channel input maxima of blocks.0 qkv shrinks,
        // and each channel's input max equals sqrt(max|X_c| · max|W_c|) at α = ½.
        let after = try ChannelSmoothing.inputRanges(smooth, ops: ops, images: 0..<2, batch: 2) { _ in x }.mapValues(Self.maxAbs)
        let op = "blocks.0.attn.qkv"
        func spread(_ v: [Float]) -> Float { v.max()! / max(v.filter { $0 > 0 }.min()!, 1e-12) }
        XCTAssertLessThan(spread(after[op]!), spread(maxima[op]!))
        let w = (vit.blocks[0].qkv as! Linear).weight
        for c in [0, 7, 100] {
            XCTAssertEqual(after[op]![c], (maxima[op]![c] * wmaxOf(w, c)).squareRoot(), accuracy: 1e-3 * after[op]![c])
        }
        // GELU outputs: the multiplier m_c = 1/s_c (factors divided by their minimum, so m_c ≤ 1)
        // scales fc2's input channels; blocks.7.mlp.fc2's outlier channel is flattened.
        let gelu = "blocks.7.mlp.fc2"
        let m = try XCTUnwrap(smooth.blocks[7].hiddenMultiplier).array
        XCTAssertEqual(m.max()!, 1, accuracy: 1e-6)
        for c in 0..<m.count { XCTAssertEqual(after[gelu]![c], maxima[gelu]![c] * m[c], accuracy: 1e-4 * max(after[gelu]![c], 1e-3)) }
        XCTAssertLessThan(spread(after[gelu]!), spread(maxima[gelu]!) / 4)
        XCTAssertNil(ChannelSmoothing.apply(vit, ranges: ranges, alpha: 0.5).blocks[7].hiddenMultiplier, "gelu_smooth_alpha 0 leaves GELU outputs alone")

        // Centred (smooth_center): the same function again, and every smoothed LayerNorm output
        // channel's range is now symmetric about 0, its half-range balanced as before.
        let centred = ChannelSmoothing.apply(vit, ranges: ranges, alpha: 0.5, center: true)
        XCTAssertLessThan(relativeError(centred.forward(x).array, a), 1e-4, "the same function, centred")
        let centredRanges = try ChannelSmoothing.inputRanges(centred, ops: ops, images: 0..<2, batch: 2) { _ in x }
        let r = centredRanges[op]!, k0 = r.count / 2
        for c in 0..<k0 {
            XCTAssertEqual(r[c], -r[k0 + c], accuracy: 1e-3 * max(r[k0 + c], 1e-3), "channel \(c)")
            XCTAssertEqual(r[k0 + c] * r[k0 + c], (ranges[op]![k0 + c] - ranges[op]![c]) / 2 * wmaxOf(w, c), accuracy: 2e-3 * r[k0 + c] * r[k0 + c])
        }
    }

    func wmaxOf(_ w: Tensor, _ c: Int) -> Float {
        let k = w.shape[1]
        return (0..<w.shape[0]).reduce(0) { max($0, abs(w.data[$1 * k + c])) }
    }

    /// max |x_c| of a range entry (k minima, then k maxima).
    static func maxAbs(_ range: [Float]) -> [Float] {
        let k = range.count / 2
        return (0..<k).map { max(-range[$0], range[k + $0]) }
    }
}
