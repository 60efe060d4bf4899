import Foundation
import VitqFormats
import VitqModels
import VitqQuant
import VitqTensor
import VitqTestSupport
import XCTest

/// Per-module bit widths (`module_bits`) in the calibrators, the file (4-bit weights two per
/// byte) and both engines, on the distilled DeiT micro fixture.
final class MixedPrecisionFileTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// Block 0's attention at 4 bits, block 1's MLP at 3, the head at 6, the rest at 8.
    let recipeText = "name: mixed\nkeep_float: 0\nmodule_bits: {blocks.0.attn: 4, blocks.1.mlp: 3, head: 6}\n"

    func mixedMicro() throws -> (fp: VisionTransformer, net: QuantizedNetwork, path: String, recipe: Recipe) {
        try Fixtures.require()
        let fp = try VisionTransformer(path: Fixtures.deitMicro)
        let recipe = try Recipe.parse(recipeText, source: "mixed.yaml")
        try SensitivityAnalysis.checkNamedOps(recipe: recipe, model: fp, source: "mixed.yaml")
        let cal = MinMaxCalibrator(model: fp, recipe: recipe)
        cal.observe(randomImages(fp, count: 4, seed: 1))
        let net = try cal.finish()
        let path = dir + "/mixed.safetensors"
        try QModelFile.write(net, provenance: QModelProvenance(sourceSHA256: try SHA256.hex(ofFile: Fixtures.deitMicro),
                                                                sourceName: "micro", recipeJSON: recipe.canonicalJSON), to: path)
        return (fp, net, path, recipe)
    }

    func randomImages(_ m: VisionTransformer, count: Int, seed: UInt64) -> Tensor {
        let c = m.config
        let t = Tensor(zeros: [count, c.inChans, c.imgSize, c.imgSize])
        var rng = SeededRandom(seed: seed)
        for i in 0..<t.count { t.data[i] = Float(rng.normal()) }
        return t
    }

    func weight(_ net: QuantizedNetwork, _ op: String) -> QuantizedWeight? {
        guard case let .quantized(w, _)? = net.linear[op] else { return nil }
        return w
    }

    func testModuleBitsReachEveryOpOfTheModule() throws {
        let (_, net, _, recipe) = try mixedMicro()
        XCTAssertEqual(recipe.moduleBits(for: "blocks.0.attn.matmul1"), 4)
        XCTAssertEqual(recipe.moduleBits(for: "blocks.0.attn.qkv"), 4)
        XCTAssertNil(recipe.moduleBits(for: "blocks.0.mlp.fc1"))
        XCTAssertEqual(weight(net, "blocks.0.attn.qkv")?.quant.scheme.bits, 4)
        XCTAssertEqual(weight(net, "blocks.0.attn.proj")?.quant.scheme.bits, 4)
        XCTAssertEqual(weight(net, "blocks.0.mlp.fc1")?.quant.scheme.bits, 8)
        XCTAssertEqual(weight(net, "blocks.1.mlp.fc2")?.quant.scheme.bits, 3)
        XCTAssertEqual(weight(net, "head")?.quant.scheme.bits, 6)
        guard case let .quantized(_, input)? = net.linear["blocks.1.mlp.fc1"], case let .uniform(iq) = input else { return XCTFail("fc1 input") }
        XCTAssertEqual(iq.scheme.bits, 3, "activations follow the module's width too")
        let a = try XCTUnwrap(net.attention["blocks.0.attn"])
        XCTAssertEqual([a.q.scheme.bits, a.k.scheme.bits, a.v.scheme.bits], [4, 4, 4])
        XCTAssertEqual(net.attention["blocks.1.attn"]?.q.scheme.bits, 8)
        // Values on the 4-bit narrow grid [-7, 7], and some reach its ends.
        let qkv = try XCTUnwrap(weight(net, "blocks.0.attn.qkv"))
        XCTAssertEqual(qkv.values.min(), -7); XCTAssertEqual(qkv.values.max(), 7)
    }

    func testPackedWeightsRoundTripAndHalveTheBytes() throws {
        let (fp, net, path, _) = try mixedMicro()
        let f = try TensorFile(path: path)
        let qkv = try f.info("blocks.0.attn.qkv.weight"), fc1 = try f.info("blocks.0.mlp.fc1.weight")
        XCTAssertEqual(qkv.dtype, .u8)
        let out = weight(net, "blocks.0.attn.qkv")!.outFeatures, inF = weight(net, "blocks.0.attn.qkv")!.inFeatures
        XCTAssertEqual(qkv.shape, [out, (inF + 1) / 2], "two 4-bit weights per byte")
        XCTAssertEqual(fc1.dtype, .i8)
        XCTAssertEqual(try f.info("head.weight").dtype, .i8, "6 bits stay one per byte")
        let (back, prov) = try QModelFile.read(f)
        for op in ["blocks.0.attn.qkv", "blocks.0.attn.proj", "blocks.1.mlp.fc1", "blocks.1.mlp.fc2", "head"] {
            XCTAssertEqual(weight(back, op)?.values, weight(net, op)?.values, op)
            XCTAssertEqual(weight(back, op)?.quant, weight(net, op)?.quant, op)
        }
        let again = dir + "/again.safetensors"
        try QModelFile.write(back, provenance: prov, to: again)
        XCTAssertEqual(FileManager.default.contents(atPath: path), FileManager.default.contents(atPath: again))
        // Both engines agree bit for bit on the mixed file.
        let x = randomImages(fp, count: 3, seed: 4)
        let a = back.makeModel(.integer).forward(x, observer: nil).array, b = back.makeModel(.fakeQuant).forward(x, observer: nil).array
        XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern))
    }

    func testNibblePackingByHand() {
        // Row [-8, 7, -1] → bytes [0x78, 0x0F]: the low nibble first, the odd row's high nibble 0.
        XCTAssertEqual(PackedNibbles.pack([-8, 7, -1, 1, 0, -2], rows: 2, inFeatures: 3), [0x78, 0x0F, 0x01, 0x0E])
        XCTAssertEqual(PackedNibbles.unpack([0x78, 0x0F, 0x01, 0x0E], rows: 2, inFeatures: 3), [-8, 7, -1, 1, 0, -2])
        XCTAssertNil(PackedNibbles.unpack([0x78, 0x1F, 0x01, 0x0E], rows: 2, inFeatures: 3), "padding nibble set")
        var rng = SeededRandom(seed: 3)
        let v = (0..<(5 * 7)).map { _ in Int8(Int(rng.next() % 16) - 8) }
        XCTAssertEqual(PackedNibbles.unpack(PackedNibbles.pack(v, rows: 5, inFeatures: 7), rows: 5, inFeatures: 7), v)
    }

    func testWidthAndPackedSizeThatDisagreeAreRefused() throws {
        let (_, _, path, _) = try mixedMicro()
        let f = try TensorFile(path: path)
        func rewritten(_ edit: (String, DType, [Int], Data) -> (DType, [Int], Data)) throws -> String {
            var w = SafeTensorsWriter()
            w.metadata = f.metadata
            for n in f.names {
                let i = try f.info(n)
                let (d, s, b) = edit(n, i.dtype, i.shape, Data(try f.rawBytes(n)))
                w.add(n, dtype: d, shape: s, bytes: b)
            }
            let out = dir + "/bad-\(UUID().uuidString).safetensors"
            try w.write(to: out)
            return out
        }
        func refused(_ p: String, _ needles: [String]) {
            XCTAssertThrowsError(try QModelFile.read(try TensorFile(path: p))) { e in
                for n in needles { XCTAssertTrue("\(e)".contains(n), "'\(e)' should mention '\(n)'") }
                XCTAssertFalse("\(e)".contains("\n"))
            }
        }
        // A 4-bit weight stored unpacked (I8, full size).
        let unpacked = try rewritten { n, d, s, b in
            guard n == "blocks.0.attn.proj.weight" else { return (d, s, b) }
            let v = PackedNibbles.unpack(Array(b), rows: s[0], inFeatures: s[0])!
            return (.i8, [s[0], s[0]], v.withUnsafeBufferPointer { Data(buffer: $0) })
        }
        refused(unpacked, ["blocks.0.attn.proj.weight", "packed as U8", "got I8"])
        // A packed tensor of the wrong size.
        refused(try rewritten { n, d, s, b in n == "blocks.0.attn.proj.weight" ? (d, [s[0], s[1] - 1], b.prefix(s[0] * (s[1] - 1))) : (d, s, b) },
                ["blocks.0.attn.proj.weight", "4-bit"])
        // An 8-bit weight stored as U8.
        refused(try rewritten { n, d, s, b in n == "blocks.0.mlp.fc1.weight" ? (.u8, s, b) : (d, s, b) },
                ["blocks.0.mlp.fc1.weight", "8-bit", "not packed"])
    }

    func testBadModuleBitsAreRefusedNamingTheKey() throws {
        XCTAssertThrowsError(try Recipe.parse("module_bits: {blocks.0.attn: 9}\n", source: "r.yaml")) { e in
            XCTAssertTrue("\(e)".contains("r.yaml") && "\(e)".contains("module_bits") && "\(e)".contains("blocks.0.attn"), "\(e)")
        }
        XCTAssertThrowsError(try Recipe.parse("module_bits: [4]\n", source: "r.yaml")) { e in XCTAssertTrue("\(e)".contains("module_bits"), "\(e)") }
        XCTAssertThrowsError(try Recipe.parse("module_bits: {a: [4]}\n", source: "r.yaml")) { e in XCTAssertTrue("\(e)".contains("module_bits"), "\(e)") }
        XCTAssertThrowsError(try Recipe.parse("weight_bits: {a: 4}\n", source: "r.yaml")) { e in XCTAssertTrue("\(e)".contains("weight_bits"), "\(e)") }
        try Fixtures.require()
        let fp = try VisionTransformer(path: Fixtures.deitMicro)
        let r = try Recipe.parse("module_bits: {blocks.9.mlp: 4}\n", source: "r.yaml")
        XCTAssertThrowsError(try SensitivityAnalysis.checkNamedOps(recipe: r, model: fp, source: "r.yaml")) { e in
            XCTAssertTrue("\(e)".contains("r.yaml") && "\(e)".contains("'blocks.9.mlp'"), "\(e)")
        }
    }
}
