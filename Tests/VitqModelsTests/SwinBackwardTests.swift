@_spi(Testing) import VitqModels
import Foundation
import VitqFormats
import VitqTensor
import VitqTestSupport
import XCTest

/// The Swin backward pass against finite differences on a tiny random Swin: two stages, a
/// shifted-window block with its mask, a patch merging, a last stage whose single window
/// turns the shift off.
final class SwinBackwardTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// img 16, patch 2 (an 8×8 grid), window 4 (shift 2 on odd blocks), embed 8, depths [2, 2], heads [1, 2], 10 classes.
    func tinySwin() throws -> SwinTransformer {
        var c = SwinConfig()
        c.imgSize = 16; c.patchSize = 2; c.windowSize = 4; c.embedDim = 8; c.depths = [2, 2]; c.numHeads = [1, 2]; c.numClasses = 10
        var rng = SeededRandom(seed: 5)
        var w = SafeTensorsWriter()
        func tensor(_ name: String, _ shape: [Int], std: Double, mean: Double = 0) {
            w.add(name, shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in Float(mean + std * rng.normal()) })
        }
        func norm(_ name: String, _ dim: Int) { tensor("\(name).weight", [dim], std: 0.2, mean: 1); tensor("\(name).bias", [dim], std: 0.2) }
        func linear(_ name: String, out: Int, in inF: Int, gain: Double = 1, bias: Bool = true) {
            tensor("\(name).weight", [out, inF], std: gain / Double(inF).squareRoot())
            if bias { tensor("\(name).bias", [out], std: 0.1) }
        }
        tensor("patch_embed.proj.weight", [8, 3, 2, 2], std: 0.5); tensor("patch_embed.proj.bias", [8], std: 0.1)
        norm("patch_embed.norm", 8)
        for s in 0..<2 {
            let d = c.dim(s), win = c.window(s)
            if s > 0 { norm("layers.\(s).downsample.norm", 4 * c.dim(s - 1)); linear("layers.\(s).downsample.reduction", out: d, in: 4 * c.dim(s - 1), bias: false) }
            for b in 0..<2 {
                let p = "layers.\(s).blocks.\(b)"
                norm("\(p).norm1", d); norm("\(p).norm2", d)
                tensor("\(p).attn.relative_position_bias_table", [(2 * win - 1) * (2 * win - 1), c.numHeads[s]], std: 0.5)
                linear("\(p).attn.qkv", out: 3 * d, in: d, gain: 1.5); linear("\(p).attn.proj", out: d, in: d)
                linear("\(p).mlp.fc1", out: 4 * d, in: d, gain: 1.5); linear("\(p).mlp.fc2", out: d, in: 4 * d)
            }
        }
        norm("norm", 16)
        linear("head.fc", out: 10, in: 16, gain: 2)
        let path = dir + "/tiny_swin.safetensors"
        try w.write(to: path)
        return try SwinTransformer(file: try TensorFile(path: path), config: c)
    }

    func testGradientsMatchFiniteDifferences() throws {
        let model = try tinySwin()
        XCTAssertEqual(model.config.shift(0, block: 1), 2)
        XCTAssertEqual(model.config.shift(1, block: 1), 0)
        var rng = SeededRandom(seed: 7)
        let images = Tensor(shape: [2, 3, 16, 16], values: (0..<(2 * 3 * 256)).map { _ in Float(rng.normal()) })
        let taps = FilteredTaps()
        let logits = model.forwardBackward(images, loss: .fisherArgmax, observer: taps)
        XCTAssertLessThan(relativeError(logits.array, model.forward(images).array), 1e-6, "the traced forward is the forward")
        let targets = TaskLoss.fisherArgmax.targets(logits: logits)
        let blockOps = ["attn.qkv", "attn.matmul1", "attn.softmax", "attn.matmul2", "attn.proj", "mlp.fc1", "mlp.act", "mlp.fc2"]
        let ops = ["patch_embed", "layers.1.downsample.reduction", "head.fc"]
            + (0..<2).flatMap { s in (0..<2).flatMap { b in blockOps.map { "layers.\(s).blocks.\(b).\($0)" } } }
        for op in ops {
            let grad = try XCTUnwrap(taps.values[op + ".grad"], op)
            let direction = (0..<grad.count).map { _ in rng.normal() }
            var scaleOfOp = 0.0
            _ = model.logits(images) { name, p, shape in
                guard name == op else { return }
                let n = shape.reduce(1, *)
                XCTAssertEqual(n, grad.count, op)
                // The step follows the op's typical value; the shifted windows' −100 mask entries are left out.
                let values = (0..<n).map { Double(p[$0]) }.filter { $0 > -50 }
                scaleOfOp = (values.reduce(0) { $0 + $1 * $1 } / Double(max(1, values.count))).squareRoot()
            }
            let step = 1e-2 * max(scaleOfOp, 1e-2)
            let (analytic, numeric, rel) = GradientCheck.compare(op: op, grad: grad, direction: direction, step: step, targets: targets) {
                model.logits(images, perturbing: $0)
            }
            XCTAssertLessThan(rel, 5e-3, "\(op): analytic \(analytic), numeric \(numeric)")
        }
    }
}

/// `vitq synth`'s Swin writer against timm's state-dict layout (the micro fixture's key list),
/// and a synthetic swin-tiny loading from its metadata and running.
final class SwinSynthTests: XCTestCase {
    func testSyntheticSwinHasTimmsKeysAndRuns() throws {
        try Fixtures.require()
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath:
            Fixtures.path("arch/swin_micro_patch4_window7_224_random.json")))) as? [String: Any])
        let timmKeys = try XCTUnwrap(json["state_dict_keys"] as? [String: [Int]])
        let micro = try SwinConfig(timmConfig: try XCTUnwrap(json["config"] as? [String: Any]), source: "fixture")
        let dir = makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/micro.safetensors"
        try SyntheticModel.swin(micro, name: "micro").write(to: path)
        let file = try TensorFile(path: path)
        XCTAssertEqual(Dictionary(uniqueKeysWithValues: file.names.map { ($0, file.tensors[$0]!.shape) }), timmKeys)

        let tiny = dir + "/swin-tiny.safetensors"
        try SyntheticModel.swin(SyntheticModel.swinAliases["swin-tiny"]!, name: "swin-tiny").write(to: tiny)
        let model = try SwinTransformer(path: tiny)
        XCTAssertEqual(model.config.depths, [2, 2, 6, 2])
        XCTAssertEqual(model.config.numHeads, [3, 6, 12, 24])
        var rng = SeededRandom(seed: 1)
        let logits = model.forward(Tensor(shape: [1, 3, 224, 224], values: (0..<(3 * 224 * 224)).map { _ in Float(rng.normal()) }))
        XCTAssertEqual(logits.shape, [1, 1000])
        XCTAssertTrue(logits.array.allSatisfy(\.isFinite))
    }
}
