import Foundation
import VitqFormats
import VitqModels
import VitqTensor
import VitqTestSupport
import XCTest

/// The model-family registry: which family a file, a JOB name or a quantized file's tag is; each
/// family's spec through encode and decode; the blueprint's op names and the float tensors
/// against the checkpoint's keys.
final class ModelFamilyTests: XCTestCase {
    let swinPath = Fixtures.path("arch/swin_micro_patch4_window7_224_random.safetensors")

    func testFilesNamesAndTagsGiveTheirFamily() throws {
        try Fixtures.require()
        for (path, family) in [(Fixtures.vitTiny, "vit"), (Fixtures.deitMicro, "vit"), (swinPath, "swin")] {
            let file = try TensorFile(path: path)
            XCTAssertEqual(ModelFamilies.detect(file).name, family, path)
            XCTAssertEqual(try ModelFamilies.load(file: file).family.name, family, path)
        }
        XCTAssertEqual(ModelFamilies.named("vit")?.name, "vit")
        XCTAssertEqual(ModelFamilies.named("swin")?.name, "swin")
        XCTAssertNil(ModelFamilies.named("convnext"))
        XCTAssertEqual(ModelFamilies.tagged(nil)?.name, "vit", "a ViT quantized file has no architecture key")
        XCTAssertEqual(ModelFamilies.tagged("vit")?.name, "vit")
        XCTAssertEqual(ModelFamilies.tagged("swin")?.name, "swin")
        XCTAssertNil(ModelFamilies.tagged("convnext"))
        XCTAssertNil(ViTFamily().architectureTag)
        XCTAssertEqual(SwinFamily().architectureTag, "swin")
        XCTAssertEqual(ModelFamilies.names, "torch-vit, vit, swin")
        XCTAssertEqual(ModelFamilies.tagged("torch-vit")?.name, "torch-vit")
    }

    /// A model loaded again from its encoded spec is the same model: same spec, same logits.
    func testSpecRoundTripsThroughTheFamily() throws {
        try Fixtures.require()
        for path in [Fixtures.deitMicro, swinPath] {
            let file = try TensorFile(path: path)
            let model = try ModelFamilies.load(file: file)
            let spec = try model.encodedSpec()
            let again = try model.family.load(file: file, spec: spec, source: "test")
            XCTAssertEqual(try again.encodedSpec(), spec, path)
            let x = images(model.imageSize)
            XCTAssertEqual(again.forward(x, observer: nil).array, model.forward(x, observer: nil).array, path)
        }
    }

    /// The blueprint names the model's ops; the float tensors and the linear ops' weights and
    /// biases are exactly the checkpoint's keys.
    func testBlueprintAndFloatTensorsMatchTheCheckpoint() throws {
        try Fixtures.require()
        for path in [Fixtures.deitMicro, swinPath] {
            let file = try TensorFile(path: path)
            let model = try ModelFamilies.load(file: file)
            let blueprint = try model.family.blueprint(spec: try model.encodedSpec(), source: "test", file: file)
            XCTAssertEqual(blueprint.linearOps, model.linearOps.map(\.name), path)
            XCTAssertEqual(blueprint.attentionBlocks.map(\.name), model.attentionBlocks, path)
            XCTAssertEqual(blueprint.attentionBlocks.map(\.heads), model.attentionBlocks.map { model.attentionGeometry($0)!.heads }, path)
            var keys = Set(model.floatTensors.map(\.key))
            for (name, op) in model.linearOps {
                keys.insert("\(name).weight")
                if let lin = op as? Linear, lin.bias != nil { keys.insert("\(name).bias") }
                XCTAssertEqual(model.storedWeightShape(name, out: op.outFeatures, in: op.inFeatures), file.tensors["\(name).weight"]?.shape, name)
            }
            XCTAssertEqual(keys, Set(file.names), path)
            for (key, t) in model.floatTensors { XCTAssertEqual(t.shape.reduce(1, *), file.tensors[key]!.shape.reduce(1, *), key) }
        }
    }

    func testABadSpecNamesItsSourceAndFamily() throws {
        try Fixtures.require()
        let file = try TensorFile(path: swinPath)
        for family in ModelFamilies.all {
            XCTAssertThrowsError(try family.blueprint(spec: "{\"depths\": 3}", source: "the job's model spec", file: file)) { e in
                XCTAssertTrue("\(e)".contains("the job's model spec"), "\(e)")
                XCTAssertTrue("\(e)".contains("spec"), "\(e)")
            }
        }
        // A Swin spec whose heads do not match its stages is refused before anything is built.
        let model = try ModelFamilies.load(file: file)
        let bad = try model.encodedSpec().replacingOccurrences(of: "\"numHeads\":[1,2,4,8]", with: "\"numHeads\":[1,2,4]")
        XCTAssertThrowsError(try SwinFamily().load(file: file, spec: bad, source: "the job's model spec")) { e in
            XCTAssertTrue("\(e)".contains("num_heads"), "\(e)")
        }
    }

    func images(_ size: Int) -> Tensor {
        var rng = SeededRandom(seed: 7)
        return Tensor(shape: [2, 3, size, size], values: (0..<(2 * 3 * size * size)).map { _ in Float(rng.normal()) })
    }
}
