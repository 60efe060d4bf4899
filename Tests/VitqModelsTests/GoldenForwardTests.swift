import Foundation
import VitqFormats
import VitqModels
import VitqTensor
import VitqTestSupport
import XCTest

/// Collects tapped activations by name.
final class TapCollector: ForwardObserver {
    var taps: [String: [Float]] = [:]
    func wants(_ name: String) -> Bool { true }
    func observe(_ name: String, _ values: UnsafeBufferPointer<Float>, shape: [Int]) { taps[name] = Array(values) }
}

/// The fp32 forward pass against goldens computed by timm / an independent numpy reference.
final class GoldenForwardTests: XCTestCase {
    /// Agreement stated by the fixtures: about 1e-4 relative (max|a−b| / max|ref|).
    static let tolerance = 1e-4

    func testViTTinyMatchesReferenceActivationsOfImage0() throws {
        try Fixtures.require()
        let model = try VisionTransformer(path: Fixtures.vitTiny)
        XCTAssertEqual(model.config.numHeads, 3)
        XCTAssertEqual(model.spec.preprocess.mean, [0.5, 0.5, 0.5])
        XCTAssertEqual(model.spec.preprocess.resizeShorterSide, 248)
        let golden = try TensorFile(path: Fixtures.path("vit_tiny_reference_activations_img0.safetensors"))
        let input = try golden.floatTensor("input_nchw")
        let taps = TapCollector()
        let logits = model.forward(input, observer: taps)
        func check(_ ours: [Float], _ key: String) throws {
            let err = relativeError(ours, try golden.floatTensor(key).array)
            XCTAssertLessThan(err, Self.tolerance, key)
        }
        try check(taps.taps["patch_embed"]!, "patch_embed_out")
        try check(taps.taps["embed"]!, "embed_out")
        try check(Array(taps.taps["blocks.0.attn.softmax"]!), "blocks.0.attn_probs")
        for i in 0..<12 { try check(taps.taps["blocks.\(i)"]!, "blocks.\(i).out") }
        try check(Array(taps.taps["norm"]!.prefix(192)), "norm_out_cls")
        try check(logits.array, "logits")
    }

    func testNormalisedEven500Row0EqualsTheGoldenInput() throws {
        try Fixtures.require()
        let images = try NpyArray(path: Fixtures.even500Images, expect: .uint8)
        let golden = try TensorFile(path: Fixtures.path("vit_tiny_reference_activations_img0.safetensors")).floatTensor("input_nchw")
        // (x/255 − 0.5)/0.5 by hand, HWC → CHW.
        let px = images.bytes
        for c in 0..<3 { for i in stride(from: 0, to: 224 * 224, by: 97) {
            let v = (Float(px[i * 3 + c]) / 255 - 0.5) / 0.5
            XCTAssertEqual(golden[c * 224 * 224 + i], v, accuracy: 1e-6)
        } }
    }

    func testDistilledDeiTMatchesTimmGolden() throws {
        try Fixtures.require()
        let model = try VisionTransformer(path: Fixtures.deitMicro)
        XCTAssertEqual(model.spec.family, .deitDistilled)
        XCTAssertEqual(model.config.numHeads, 2)
        XCTAssertEqual(model.config.tokens, 198)
        XCTAssertEqual(model.spec.preprocess.mean, [0.485, 0.456, 0.406])
        let golden = try TensorFile(path: Fixtures.deitMicroGolden)
        let taps = TapCollector()
        let logits = model.forward(try golden.floatTensor("input_nchw"), observer: taps)
        for (ours, key) in [("patch_embed", "patch_embed.out"), ("blocks.0", "blocks.0.out"), ("blocks.1", "blocks.1.out"), ("norm", "norm.out")] {
            XCTAssertLessThan(relativeError(taps.taps[ours]!, try golden.floatTensor(key).array), Self.tolerance, key)
        }
        XCTAssertLessThan(relativeError(logits.array, try golden.floatTensor("logits").array), Self.tolerance, "logits")
    }

    func testBatchedForwardEqualsOneImageAtATime() throws {
        try Fixtures.require()
        let model = try VisionTransformer(path: Fixtures.deitMicro)
        let input = try TensorFile(path: Fixtures.deitMicroGolden).floatTensor("input_nchw")
        let all = model.forward(input).array
        let per = 3 * 224 * 224
        for i in 0..<4 {
            let one = Tensor(shape: [1, 3, 224, 224], values: Array(UnsafeBufferPointer(start: input.data + i * per, count: per)))
            XCTAssertLessThan(relativeError(model.forward(one).array, Array(all[(i * 1000)..<((i + 1) * 1000)])), 1e-5)
        }
    }
}

/// The Swin forward against timm's goldens for the random micro Swin (shifted windows,
/// relative position bias, patch merging, a last stage whose single window disables the shift).
final class SwinGoldenTests: XCTestCase {
    func testMicroSwinMatchesTimm() throws {
        try Fixtures.require()
        let model = try SwinTransformer(path: Fixtures.path("arch/swin_micro_patch4_window7_224_random.safetensors"))
        XCTAssertEqual(model.config.numHeads, [1, 2, 4, 8])
        XCTAssertEqual((0..<4).map { model.config.shift($0, block: 1) }, [3, 3, 3, 0])
        let golden = try TensorFile(path: Fixtures.path("arch/swin_micro_patch4_window7_224_random.golden.safetensors"))
        let taps = TapCollector()
        let logits = model.forward(try golden.floatTensor("input_nchw"), observer: taps)
        func check(_ ours: [Float], _ key: String) throws {
            XCTAssertLessThan(relativeError(ours, try golden.floatTensor(key).array), GoldenForwardTests.tolerance, key)
        }
        try check(taps.taps["patch_embed"]!, "patch_embed.out")
        for s in 0..<4 { try check(taps.taps["layers.\(s)"]!, "layers.\(s).out") }
        try check(taps.taps["norm"]!, "norm.out")
        try check(logits.array, "logits")
    }
}
