import Foundation
import VitqFormats
import VitqModels
import VitqTensor
import VitqTestSupport
import XCTest

/// Strict loading and config resolution.
final class ModelLoadingTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// The DeiT micro fixture rewritten with `edit` applied to its tensors, with timm_config metadata.
    func deitVariant(_ name: String, metadata: [String: String]? = nil,
                     edit: (inout [String: (shape: [Int], values: [Float])]) -> Void) throws -> String {
        let src = try TensorFile(path: Fixtures.deitMicro)
        var tensors: [String: (shape: [Int], values: [Float])] = [:]
        for n in src.names { let t = try src.floatTensor(n); tensors[n] = (t.shape, t.array) }
        edit(&tensors)
        var w = SafeTensorsWriter()
        for (n, t) in tensors { w.add(n, shape: t.shape, floats: t.values) }
        w.metadata = metadata ?? src.metadata
        let p = dir + "/" + name + ".safetensors"
        try w.write(to: p)
        return p
    }

    func assertModelError(_ path: String, _ needles: [String], overrides: ModelOverrides = ModelOverrides(),
                          file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try VisionTransformer(path: path, overrides: overrides), file: file, line: line) { e in
            let t = "\(e)"
            XCTAssertFalse(t.contains("\n"), file: file, line: line)
            for n in needles { XCTAssertTrue(t.contains(n), "'\(t)' should mention '\(n)'", file: file, line: line) }
        }
    }

    func testMissingKeyIsNamed() throws {
        try Fixtures.require()
        let p = try deitVariant("missing") { $0["blocks.1.mlp.fc2.bias"] = nil }
        assertModelError(p, [p, "blocks.1.mlp.fc2.bias", "missing"])
    }

    func testMisShapedKeyIsNamed() throws {
        try Fixtures.require()
        let p = try deitVariant("misshaped") { $0["blocks.0.attn.proj.weight"] = ([64, 32], Array(repeating: 0, count: 64 * 32)) }
        assertModelError(p, [p, "blocks.0.attn.proj.weight", "[64, 32]", "[64, 64]"])
    }

    func testExtraKeyIsNamed() throws {
        try Fixtures.require()
        let p = try deitVariant("extra") { $0["blocks.0.ls1.gamma"] = ([64], Array(repeating: 1, count: 64)) }
        assertModelError(p, [p, "blocks.0.ls1.gamma", "unexpected"])
    }

    func testUnknownConfigKeyIsNamed() throws {
        try Fixtures.require()
        let meta = ["timm_config": #"{"embed_dim": 64, "depth": 2, "num_heads": 2, "window_sz": 7}"#]
        let p = try deitVariant("badkey", metadata: meta) { _ in }
        assertModelError(p, ["timm_config", "window_sz", "unknown"])
    }

    func testConfigContradictingShapesIsNamed() throws {
        try Fixtures.require()
        let p = try deitVariant("contradict", metadata: ["timm_config": #"{"embed_dim": 96, "num_heads": 2}"#]) { _ in }
        assertModelError(p, ["embed_dim", "96", "64"])
    }

    func testSidecarJSONIsUsedAndCheckedAgainstTheFile() throws {
        try Fixtures.require()
        // Without metadata, the fixture's own sidecar JSON gives the heads; a stripped copy gets the fallback.
        let spec = try ModelConfigResolver.resolve(file: TensorFile(path: Fixtures.deitMicro))
        XCTAssertEqual(spec.vit.numHeads, 2)
        let p = try deitVariant("nometa", metadata: [:]) { _ in }
        let fallback = try ModelConfigResolver.resolve(file: TensorFile(path: p))
        XCTAssertEqual(fallback.vit.numHeads, 1, "64 wide / head width 64")
        XCTAssertTrue(fallback.headsSource.contains("assumed"))
        XCTAssertEqual(try ModelConfigResolver.resolve(file: TensorFile(path: p), overrides: ModelOverrides(numHeads: 4)).vit.numHeads, 4)
        // A sidecar with an unknown key is an error naming it.
        try #"{"timm_class": "VisionTransformerDistilled", "config": {"num_heads": 2}, "colour": 1}"#
            .write(toFile: dir + "/nometa.json", atomically: true, encoding: .utf8)
        assertModelError(p, ["nometa.json", "colour"])
    }

    func testKnownNameTableAndOverrides() throws {
        try Fixtures.require()
        let f = try TensorFile(path: Fixtures.vitTiny)
        let spec = try ModelConfigResolver.resolve(file: f)
        XCTAssertTrue(spec.configSource.contains("vit_tiny_patch16_224"))
        XCTAssertEqual(spec.preprocess.cropPct, 0.9)
        let o = try ModelConfigResolver.resolve(file: f, overrides: ModelOverrides(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], cropPct: 0.875))
        XCTAssertEqual(o.preprocess.resizeShorterSide, 256)
        XCTAssertEqual(o.preprocess.std, [0.229, 0.224, 0.225])
    }

    func testSyntheticModelsLoadWithTheirOwnMetadata() throws {
        let p = dir + "/deit-small.safetensors"
        try SyntheticModel.vit(arch: "deit-small", seed: 3).write(to: p)
        let m = try VisionTransformer(path: p)
        XCTAssertEqual(m.spec.family, .deit)
        XCTAssertEqual(m.config.numHeads, 6)
        XCTAssertEqual(m.config.embedDim, 384)
        XCTAssertEqual(m.parameterCount, 22_050_664)
        XCTAssertEqual(m.spec.preprocess.cropPct, 0.875)
        // Same seed, same bytes.
        XCTAssertEqual(try SyntheticModel.vit(arch: "vit-tiny", seed: 1).serialized(), try SyntheticModel.vit(arch: "vit-tiny", seed: 1).serialized())
    }
}
