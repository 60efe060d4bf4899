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
        let ops = vit.smoothedOps(layerNorm: true, activation: true)
        let ranges = try ChannelSmoothing.inputRanges(vit, ops: ops, images: 0..<2, batch: 1) { r in
            let t = Tensor(zeros: [r.count, 3, s, s])
            t.data.update(from: x.data + r.lowerBound * 3 * plane, count: r.count * 3 * plane)
            return t
        }
        let maxima = ranges.mapValues(Self.maxAbs)
        XCTAssertEqual(Set(maxima.keys), Set(ops))
        XCTAssertTrue(ops.contains("blocks.7.mlp.fc2") && ops.contains("head"))
        let smooth = vit.smoothed(ranges: ranges, alpha: 0.5, activationAlpha: 0.5, center: false)
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
        XCTAssertNil(vit.smoothed(ranges: ranges, alpha: 0.5, activationAlpha: 0, center: false).blocks[7].hiddenMultiplier, "gelu_smooth_alpha 0 leaves GELU outputs alone")

        // Centred (smooth_center): the same function again, and every smoothed LayerNorm output
        // channel's range is now symmetric about 0, its half-range balanced as before.
        let centred = vit.smoothed(ranges: ranges, alpha: 0.5, activationAlpha: 0, center: true)
        XCTAssertLessThan(relativeError(centred.forward(x).array, a), 1e-4, "the same function, centred")
        let centredRanges = try ChannelSmoothing.inputRanges(centred, ops: ops, images: 0..<2, batch: 2) { _ in x }
        let r = centredRanges[op]!, k0 = r.count / 2
        for c in 0..<k0 {
            XCTAssertEqual(r[c], -r[k0 + c], accuracy: 1e-3 * max(r[k0 + c], 1e-3), "channel \(c)")
            XCTAssertEqual(r[k0 + c] * r[k0 + c], (ranges[op]![k0 + c] - ranges[op]![c]) / 2 * wmaxOf(w, c), accuracy: 2e-3 * r[k0 + c] * r[k0 + c])
        }
    }

    /// The torch-vit family (post-norm, ReLU): only mlp_head.0 → head folds a LayerNorm
    /// smoothing, and the ReLU outputs fold into fc1's rows; the CIFAR-10 ViT stays the same
    /// function, with fc2's input channels divided by exactly the factors the formula gives.
    func testTorchEncoderViTSmoothsReLUOutputsAndTheHead() throws {
        try Fixtures.require()
        let model = try XCTUnwrap(try ModelFamilies.load(file: try TensorFile.open(path: Fixtures.cifarViT)) as? TorchEncoderViT)
        let raw = try Data(contentsOf: URL(fileURLWithPath: Fixtures.cifarImages))
        let x = Tensor(zeros: [4, 3, 32, 32])
        raw.withUnsafeBytes { (p: UnsafeRawBufferPointer) in
            for i in 0..<4 { for j in 0..<3072 { x.data[i * 3072 + j] = (Float(p[i * 3073 + 1 + j]) / 255 - 0.5) / 0.25 } }
        }
        let ops = model.smoothedOps(layerNorm: true, activation: true)
        XCTAssertEqual(ops, (0..<model.spec.depth).map { "blocks.\($0).mlp.fc2" } + ["head"])
        XCTAssertEqual(model.smoothedOps(layerNorm: true, activation: false), ["head"], "norm1/norm2 also feed the residual")
        let ranges = try ChannelSmoothing.inputRanges(model, ops: ops, images: 0..<4, batch: 2) { r in
            let t = Tensor(zeros: [r.count, 3, 32, 32])
            t.data.update(from: x.data + r.lowerBound * 3072, count: r.count * 3072)
            return t
        }
        let smooth = model.smoothed(ranges: ranges, alpha: 0.5, activationAlpha: 0.5, center: true)
        let a = model.forward(x, observer: nil).array, b = smooth.forward(x, observer: nil).array
        XCTAssertLessThan(relativeError(b, a), 1e-4, "the same function")
        let after = try ChannelSmoothing.inputRanges(smooth, ops: ops, images: 0..<4, batch: 4) { _ in x }
        let op = "blocks.0.mlp.fc2", before = Self.maxAbs(ranges[op]!), now = Self.maxAbs(after[op]!)
        let w = (model.blocks[0].fc2 as! Linear).weight
        XCTAssertEqual(ranges[op]!.prefix(before.count).min()!, 0, "ReLU outputs are non-negative")
        var checked = 0
        for c in 0..<before.count where before[c] > 1e-3 {
            // At α = ½: max|X_c/s_c| = sqrt(max|X_c| · max|W_c|).
            XCTAssertEqual(now[c], (before[c] * wmaxOf(w, c)).squareRoot(), accuracy: 1e-3 * now[c], "channel \(c)")
            checked += 1
        }
        XCTAssertGreaterThan(checked, before.count / 2)
        let head = after["head"]!, k = head.count / 2
        for c in 0..<k { XCTAssertEqual(head[c], -head[k + c], accuracy: 1e-3 * max(head[k + c], 1e-3), "head input channel \(c) centred") }
        let swinLike = smooth.smoothed(ranges: [:], alpha: 0.5, activationAlpha: 0.5, center: false)
        XCTAssertEqual(swinLike.forward(x, observer: nil).array, b, "no ranges: unchanged")
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
