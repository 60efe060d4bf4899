import Foundation
import VitqFormats
import VitqModels
import VitqQuant
import VitqTensor
import VitqTestSupport
import XCTest

/// The quantized file for a Swin: round trip, determinism, the integer engine against fake
/// quantization after reading, and clear errors for a bad architecture, config or tensor.
extension QModelFileTests {
    /// The micro Swin fixture, max-calibrated on its 4 golden inputs.
    func quantizedSwin() throws -> (fp: SwinTransformer, net: QuantizedNetwork, images: Tensor, path: String) {
        try Fixtures.require()
        let fp = try SwinTransformer(path: Fixtures.path("arch/swin_micro_patch4_window7_224_random.safetensors"))
        let images = try TensorFile(path: Fixtures.path("arch/swin_micro_patch4_window7_224_random.golden.safetensors")).floatTensor("input_nchw")
        let recipe = try Recipe.load("minmax-w8a8")
        let cal = MinMaxCalibrator(model: fp, recipe: recipe)
        cal.observe(images)
        let net = try cal.finish()
        let path = dir + "/swin.safetensors"
        try QModelFile.write(net, provenance: QModelProvenance(sourceSHA256: String(repeating: "a", count: 64), sourceName: "swin",
                                                                      recipeJSON: recipe.canonicalJSON), to: path)
        return (fp, net, images, path)
    }

    func testSwinRoundTripIsExactAndRunsInIntegers() throws {
        let (fp, net, images, path) = try quantizedSwin()
        let (read, prov) = try QModelFile.read(try TensorFile(path: path))
        XCTAssertEqual(read.family.name, "swin", "a Swin file reads back as a Swin")
        XCTAssertEqual(try TensorFile(path: path).metadata["architecture"], "swin")
        let back = read
        XCTAssertEqual(try XCTUnwrap(back.base as? SwinTransformer).config, fp.config)
        XCTAssertEqual(back.base.preprocess, fp.preprocess)
        XCTAssertEqual(Set(back.attention.keys), Set(net.attention.keys))
        for (k, a) in net.attention { XCTAssertEqual(back.attention[k], a, k) }
        // keep_float: 1 left one op in float; it reads back as float.
        XCTAssertEqual(back.linear.values.filter { if case .float = $0 { return true } else { return false } }.count, 1)
        let a = back.makeModel(.integer).forward(images, observer: nil).array
        XCTAssertEqual(a, net.makeModel(.integer).forward(images, observer: nil).array, "the file holds the network")
        XCTAssertEqual(a.map(\.bitPattern), back.makeModel(.fakeQuant).forward(images, observer: nil).array.map(\.bitPattern))
        let again = dir + "/swin-again.safetensors"
        try QModelFile.write(read, provenance: prov, to: again)
        XCTAssertEqual(FileManager.default.contents(atPath: path), FileManager.default.contents(atPath: again))
    }

    func testBadSwinFilesGiveClearErrors() throws {
        let (_, _, _, path) = try quantizedSwin()
        assertReadFails(try rewrite(path, metadata: { $0["architecture"] = "convnext" }), mentions: ["architecture", "convnext"])
        assertReadFails(try rewrite(path, metadata: { $0["model"] = $0["model"]!.replacingOccurrences(of: "\"numHeads\":[1,2,4,8]", with: "\"numHeads\":[1,2,4]") }),
                        mentions: ["num_heads", "3 entries for 4 stages"])
        assertReadFails(try rewrite(path, tensors: { n, i, d in n == "layers.2.blocks.1.attn.relative_position_bias_table" ? nil : (n, i, d) }),
                        mentions: ["layers.2.blocks.1.attn.relative_position_bias_table", "missing"])
        assertReadFails(try rewrite(path, tensors: { n, i, d in
            n == "layers.3.blocks.0.attn.matmul_pv.b_scale" ? (n, [2], d.prefix(8)) : (n, i, d)
        }), mentions: ["layers.3.blocks.0.attn.matmul_pv.b_scale", "shape [2]"])
    }
}
