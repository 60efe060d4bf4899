import Foundation
import VitqFormats
import VitqModels
import VitqQuant
import VitqTensor
import VitqTestSupport
import XCTest

/// The quantized file: round trip, determinism, validation of bad files, and the integer
/// engine against fake quantization on a small real-architecture model.
final class QModelFileTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// The distilled DeiT micro fixture, quantized with minmax-w8a8 on 4 random images.
    func quantizedMicro() throws -> (fp: VisionTransformer, net: QuantizedNetwork, path: String) {
        try Fixtures.require()
        let fp = try VisionTransformer(path: Fixtures.deitMicro)
        var recipe = Recipe()
        recipe.keepFloat = 1
        let cal = MinMaxCalibrator(model: fp, recipe: recipe)
        cal.observe(randomImages(fp, count: 4, seed: 1))
        let net = try cal.finish()
        let path = dir + "/q.safetensors"
        try QModelFile.write(net, provenance: QModelProvenance(sourceSHA256: try SHA256.hex(ofFile: Fixtures.deitMicro),
                                                                sourceName: "micro", recipeJSON: recipe.canonicalJSON), to: path)
        return (fp, net, path)
    }

    func randomImages(_ m: VisionTransformer, count: Int, seed: UInt64) -> Tensor {
        let c = m.config
        let t = Tensor(zeros: [count, c.inChans, c.imgSize, c.imgSize])
        var rng = SeededRandom(seed: seed)
        for i in 0..<t.count { t.data[i] = Float(rng.normal()) }
        return t
    }

    func testRoundTripIsExactAndDeterministic() throws {
        let (fp, net, path) = try quantizedMicro()
        let (read, prov) = try QModelFile.read(try TensorFile(path: path))
        let back = read
        XCTAssertEqual(back.family.name, "vit")
        XCTAssertNil(try TensorFile(path: path).metadata["architecture"], "a ViT file has no architecture key")
        XCTAssertEqual(prov.sourceName, "micro")
        XCTAssertEqual(prov.sourceSHA256.count, 64)
        let x = randomImages(fp, count: 2, seed: 9)
        XCTAssertEqual(net.makeModel(.integer).forward(x, observer: nil).array, back.makeModel(.integer).forward(x, observer: nil).array)
        // Writing the read-back network again gives the same bytes.
        let again = dir + "/again.safetensors"
        try QModelFile.write(back, provenance: prov, to: again)
        XCTAssertEqual(FileManager.default.contents(atPath: path), FileManager.default.contents(atPath: again))
        // One op stayed in float (keep_float: 1), the rest are int8.
        let floats = net.linear.values.filter { if case .float = $0 { return true } else { return false } }
        XCTAssertEqual(floats.count, 1)
    }

    func testIntegerEngineMatchesFakeQuantization() throws {
        let (fp, net, _) = try quantizedMicro()
        let x = randomImages(fp, count: 3, seed: 4)
        let a = net.makeModel(.integer).forward(x, observer: nil).array, b = net.makeModel(.fakeQuant).forward(x, observer: nil).array
        // The reference redoes the integer sums exactly in double: bit-identical logits.
        XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern))
        XCTAssertGreaterThan(relativeError(a, fp.forward(x).array), 1e-4, "quantization must change the logits")
    }

    /// The micro network with every fc2 input twin (GELU) and the probabilities twin (softmax, per head).
    func twinMicro() throws -> (fp: VisionTransformer, net: QuantizedNetwork) {
        let (fp, net, _) = try quantizedMicro()
        var linear = net.linear
        for (name, slot) in net.linear where name.hasSuffix(".mlp.fc2") {
            if case let .quantized(w, input) = slot {
                linear[name] = .quantized(w, input: .twin([TwinCandidates.gelu(delta2: input.step(0), bits: 8)]))
            }
        }
        let heads = fp.config.numHeads
        let attention = net.attention.mapValues { a -> AttentionQuant in
            var a = a
            a.probs = .twin((0..<heads).map { TwinCandidates.softmax(delta2: 1.0 / 128, bits: 8, shift: 3 + $0) })
            return a
        }
        return (fp, QuantizedNetwork(base: net.base, linear: linear, attention: attention))
    }

    func testTwinQuantizersRoundTripAndRunInIntegers() throws {
        let (fp, net) = try twinMicro()
        let path = dir + "/twin.safetensors"
        try QModelFile.write(net, provenance: QModelProvenance(sourceSHA256: String(repeating: "0", count: 64), sourceName: "micro", recipeJSON: "{}"), to: path)
        let back = try XCTUnwrap(QModelFile.read(try TensorFile(path: path)).model)
        XCTAssertEqual(back.attention, net.attention)
        // keep_float: 1 leaves the most sensitive op in float: check a quantized fc2.
        let fc2 = try XCTUnwrap(["blocks.0.mlp.fc2", "blocks.1.mlp.fc2"].first { if case .quantized = net.linear[$0]! { return true } else { return false } })
        if case let .quantized(_, input) = back.linear[fc2]!, case let .twin(t) = input {
            XCTAssertEqual(t[0].kind, .gelu)
            XCTAssertEqual(t[0].delta2 / t[0].delta1, Float(1 << t[0].shift), "power-of-two ratio")
        } else {
            XCTFail("fc2 input should read back as twin")
        }
        let x = randomImages(fp, count: 3, seed: 6)
        let a = back.makeModel(.integer).forward(x, observer: nil).array, b = back.makeModel(.fakeQuant).forward(x, observer: nil).array
        XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "two integer GEMMs + shift equal the exact reference")
        XCTAssertEqual(a, net.makeModel(.integer).forward(x, observer: nil).array)
        // A shift outside 0...20 is refused with the tensor named.
        let bad = try rewrite(path) { name, shape, data in
            guard name == "\(fc2).input_shift" else { return (name, shape, data) }
            return (name, shape, Data([Int32(40)].withUnsafeBufferPointer { Data(buffer: $0) }))
        }
        assertReadFails(bad, mentions: ["\(fc2).input_shift", "0...20"])
    }

    func testPerTokenInputsRoundTripAndRunInIntegers() throws {
        let (fp, net, _) = try quantizedMicro()
        let scheme = QuantScheme(bits: 8, signed: true, narrow: false)
        var linear = net.linear
        for (name, slot) in net.linear { if case let .quantized(w, _) = slot { linear[name] = .quantized(w, input: .perToken(scheme)) } }
        let perToken = QuantizedNetwork(base: net.base, linear: linear, attention: net.attention)
        let path = dir + "/token.safetensors"
        try QModelFile.write(perToken, provenance: QModelProvenance(sourceSHA256: String(repeating: "0", count: 64), sourceName: "micro", recipeJSON: "{}"), to: path)
        let back = try XCTUnwrap(QModelFile.read(try TensorFile(path: path)).model)
        guard case let .quantized(_, input) = back.linear["blocks.0.attn.qkv"]! else { return XCTFail("qkv should be quantized") }
        XCTAssertEqual(input, .perToken(scheme))
        let x = randomImages(fp, count: 3, seed: 5)
        let a = back.makeModel(.integer).forward(x, observer: nil).array, b = back.makeModel(.fakeQuant).forward(x, observer: nil).array
        XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "the engine equals the reference")
        XCTAssertEqual(a, perToken.makeModel(.integer).forward(x, observer: nil).array)
        XCTAssertGreaterThan(relativeError(a, net.makeModel(.integer).forward(x, observer: nil).array), 1e-4, "the inputs are quantized differently")
        // An unsigned per-token grid is refused with the op named.
        let bad = try rewrite(path, metadata: { meta in
            var ops = try! JSONSerialization.jsonObject(with: Data(meta["ops"]!.utf8)) as! [String: Any]
            var op = ops["blocks.0.attn.qkv"] as! [String: Any]
            var inp = op["input"] as! [String: Any]
            inp["signed"] = false
            op["input"] = inp; ops["blocks.0.attn.qkv"] = op
            meta["ops"] = String(decoding: try! JSONSerialization.data(withJSONObject: ops), as: UTF8.self)
        })
        assertReadFails(bad, mentions: ["blocks.0.attn.qkv", "per-token"])
    }

    /// `net` with block 0's GELU output multiplied per channel (GELU smoothing's multiplier).
    func withHiddenMultiplier(_ net: QuantizedNetwork) -> QuantizedNetwork {
        let vit = net.base as! VisionTransformer
        let hidden = vit.config.mlpHidden
        var rng = SeededRandom(seed: 3)
        let m = Tensor(shape: [hidden], values: (0..<hidden).map { _ in Float(0.05 + 0.95 * rng.uniform()) })
        var blocks = vit.blocks
        let b = blocks[0]
        blocks[0] = ViTBlock(norm1: b.norm1, qkv: b.qkv, attention: b.attention, proj: b.proj, norm2: b.norm2, fc1: b.fc1, fc2: b.fc2,
                             hiddenMultiplier: m)
        let base = VisionTransformer(spec: vit.spec, patchEmbed: vit.patchEmbed, clsToken: vit.clsToken, distToken: vit.distToken,
                                     posEmbed: vit.posEmbed, blocks: blocks, norm: vit.norm, head: vit.head, headDist: vit.headDist)
        return QuantizedNetwork(base: base, linear: net.linear, attention: net.attention)
    }

    /// Block `i`'s GELU multiplier in `net`.
    func hiddenMultiplier(_ net: QuantizedNetwork, block i: Int) -> [Float]? {
        (net.base as! VisionTransformer).blocks[i].hiddenMultiplier?.array
    }

    func testHiddenMultiplierRoundTripsAndRunsInIntegers() throws {
        let (fp, uniform, _) = try quantizedMicro()
        let x = randomImages(fp, count: 3, seed: 8)
        for (label, plain) in [("uniform fc2 input", uniform), ("twin fc2 input", try twinMicro().net)] {
            let net = withHiddenMultiplier(plain)
            let path = dir + "/mult.safetensors"
            try QModelFile.write(net, provenance: QModelProvenance(sourceSHA256: String(repeating: "0", count: 64), sourceName: "micro", recipeJSON: "{}"), to: path)
            let back = try XCTUnwrap(QModelFile.read(try TensorFile(path: path)).model)
            XCTAssertEqual(hiddenMultiplier(back, block: 0), hiddenMultiplier(net, block: 0), label)
            XCTAssertNil(hiddenMultiplier(back, block: 1), label)
            let a = back.makeModel(.integer).forward(x, observer: nil).array, b = back.makeModel(.fakeQuant).forward(x, observer: nil).array
            XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "\(label): the engine equals the reference")
            XCTAssertGreaterThan(relativeError(a, plain.makeModel(.integer).forward(x, observer: nil).array), 1e-3, "\(label): the multiplier is applied")
            // A multiplier that is not finite and positive, or mis-shaped, is refused with the tensor named.
            let name = "blocks.0.mlp.fc2.input_multiplier"
            assertReadFails(try rewrite(path) { n, shape, d in
                n == name ? (n, shape, [Float](repeating: -1, count: shape[0]).withUnsafeBufferPointer { Data(buffer: $0) }) : (n, shape, d)
            }, mentions: [name, "finite positive"])
            assertReadFails(try rewrite(path) { n, shape, d in n == name ? (n, [shape[0] - 1], d.prefix(d.count - 4)) : (n, shape, d) },
                            mentions: [name])
        }
    }

    /// Copies `path` with the metadata and tensors edited.
    func rewrite(_ path: String, metadata: (inout [String: String]) -> Void = { _ in },
                 tensors: (String, [Int], Data) -> (String, [Int], Data)? = { ($0, $1, $2) }) throws -> String {
        let f = try TensorFile(path: path)
        var w = SafeTensorsWriter()
        var meta = f.metadata
        metadata(&meta)
        w.metadata = meta
        for name in f.names {
            let info = try f.info(name)
            if let (n, shape, d) = tensors(name, info.shape, Data(try f.rawBytes(name))) { w.add(n, dtype: info.dtype, shape: shape, bytes: d) }
        }
        let out = dir + "/bad-\(UUID().uuidString).safetensors"
        try w.write(to: out)
        return out
    }

    func assertReadFails(_ path: String, mentions needles: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try QModelFile.read(try TensorFile(path: path)), file: file, line: line) { e in
            let msg = "\(e)"
            for n in needles { XCTAssertTrue(msg.contains(n), "'\(msg)' should mention '\(n)'", file: file, line: line) }
            XCTAssertFalse(msg.contains("\n"), "one line", file: file, line: line)
        }
    }

    func testBadFilesGiveClearErrors() throws {
        let (_, _, path) = try quantizedMicro()
        assertReadFails(try rewrite(path, metadata: { $0["format_version"] = "99" }), mentions: ["format_version '99'", "version 1"])
        assertReadFails(try rewrite(path, metadata: { $0["format_version"] = nil }), mentions: ["format_version", "missing"])
        assertReadFails(try rewrite(path, tensors: { n, i, d in n == "blocks.0.attn.qkv.weight_scale" ? nil : (n, i, d) }),
                        mentions: ["blocks.0.attn.qkv.weight_scale", "missing"])
        assertReadFails(try rewrite(path, tensors: { n, i, d in
            n == "blocks.1.attn.matmul_qk.a_scale" ? (n, [1], d.prefix(4)) : (n, i, d)
        }), mentions: ["blocks.1.attn.matmul_qk.a_scale", "shape [1]"])
        assertReadFails(try rewrite(path, tensors: { n, i, d in
            n == "head.input_scale" ? (n, i, Data(repeating: 0, count: 4)) : (n, i, d)
        }), mentions: ["head.input_scale", "positive"])
        assertReadFails(try rewrite(path, tensors: { n, i, d in n == "pos_embed" ? nil : (n, i, d) }), mentions: ["pos_embed"])
        assertReadFails(try rewrite(path, metadata: { $0["ops"] = "{\"blocks.9.attn.qkv\":{}}" }), mentions: ["ops"])
    }

    func testSHA256KnownAnswers() {
        XCTAssertEqual(SHA256.hex(of: Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hex(of: Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        // Two blocks plus a tail, fed in uneven pieces.
        let msg = Data((0..<1000).map { UInt8($0 % 251) })
        var s = SHA256()
        s.update(msg.prefix(3)); s.update(msg.dropFirst(3).prefix(200)); s.update(msg.dropFirst(203))
        XCTAssertEqual(s.finalizeHex(), SHA256.hex(of: msg))
    }
}

/// Recipes: built-ins, strict keys, base inheritance.
final class RecipeTests: XCTestCase {
    func testBuiltInAndStrictKeys() throws {
        setenv("VITQ_RECIPES", Fixtures.packageRoot + "/Config/recipes", 1)
        let r = try Recipe.load("minmax-w8a8")
        XCTAssertEqual(r.name, "minmax-w8a8")
        XCTAssertEqual(r.weightGranularity, .perChannel)
        XCTAssertEqual(r.keepFloat, 1)
        XCTAssertThrowsError(try Recipe.parse("name: x\nweight_bitz: 8\n", source: "r.yaml")) { e in
            XCTAssertTrue("\(e)".contains("r.yaml") && "\(e)".contains("unknown key 'weight_bitz'"), "\(e)")
        }
        XCTAssertThrowsError(try Recipe.parse("weight_bits: 9\n", source: "r.yaml")) { e in XCTAssertTrue("\(e)".contains("weight_bits"), "\(e)") }
        XCTAssertThrowsError(try Recipe.parse("weight_granularity: per_head\n", source: "r.yaml"))
        XCTAssertThrowsError(try Recipe.load("no-such-recipe")) { e in XCTAssertTrue("\(e)".contains("no-such-recipe"), "\(e)") }
        let derived = try Recipe.parse("base: minmax-w8a8\nname: mine\nkeep_float: 0\n", source: "mine.yaml")
        XCTAssertEqual(derived.name, "mine")
        XCTAssertEqual(derived.keepFloat, 0)
        XCTAssertEqual(derived.weightNarrow, r.weightNarrow)
    }

    func testSearchRecipes() throws {
        setenv("VITQ_RECIPES", Fixtures.packageRoot + "/Config/recipes", 1)
        let p8 = try Recipe.load("ptq4vit-w8a8")
        XCTAssertEqual(p8.method, "search")
        XCTAssertEqual(p8.search.metric, .hessian)
        XCTAssertEqual([p8.search.alpha, p8.search.beta], [0.01, 1.2])
        XCTAssertEqual([p8.search.candidates, p8.search.rounds], [100, 3])
        XCTAssertTrue(p8.search.twin)
        XCTAssertEqual(p8.gradient, "fisher-argmax")
        let p6 = try Recipe.load("ptq4vit-w6a6")
        XCTAssertEqual([p6.weightBits, p6.activationBits, p6.search.weightScheme.bits, p6.search.activationScheme.bits], [6, 6, 6, 6])
        let best6 = try Recipe.load("vitq-w6a6")
        XCTAssertEqual([best6.weightBits, best6.activationBits, best6.keepFloat], [6, 6, 3])
        XCTAssertEqual([best6.smoothAlpha, best6.geluSmoothAlpha], [0.5, 0.5])
        XCTAssertTrue(best6.smoothCenter)
        XCTAssertEqual(best6.weightGranularity, .perChannel)
        let best8 = try Recipe.load("vitq-w8a8")
        XCTAssertEqual([best8.activationGranularity, best8.search.activationGranularity, best8.weightGranularity], [.perToken, .perToken, .perChannel])
        XCTAssertEqual(best8.keepFloat, 0)
        XCTAssertTrue(best8.canonicalJSON.contains("\"activation_granularity\":\"per_token\""))
        XCTAssertFalse(p8.canonicalJSON.contains("activation_granularity"), "the default is not written, so earlier files keep their bytes")
        let base = try Recipe.load("base-ptq-w8a8")
        XCTAssertEqual(base.search.metric, .cosine)
        XCTAssertEqual([base.search.alpha, base.search.beta], [0.5, 1.2])
        XCTAssertEqual(base.search.rounds, 1)
        XCTAssertFalse(base.search.twin)
        XCTAssertEqual(try Recipe.parse("metric: hessian-dplr\n", source: "d.yaml").search.metric, .hessianDPLR)
        for bad in ["metric: l1\n", "search_alpha: 2\nsearch_beta: 1\n", "gradient: kl\n", "search_rounds: 0\n",
                    "method: search\nmatmul_granularity: per_tensor\n", "smooth_center: true\n", "gelu_smooth_alpha: 2\n",
                    "activation_granularity: per_channel\n"] {
            XCTAssertThrowsError(try Recipe.parse(bad, source: "s.yaml"), bad) { e in XCTAssertTrue("\(e)".hasPrefix("s.yaml: "), "\(e)") }
        }
    }
}
