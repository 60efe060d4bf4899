import Foundation
import VitqFormats
@_spi(Testing) import VitqModels
import VitqTensor
import VitqTestSupport
import XCTest

/// Collects the taps whose names pass `filter`, with their shapes.
final class FilteredTaps: ForwardObserver {
    let filter: (String) -> Bool
    var values: [String: [Float]] = [:]
    var shapes: [String: [Int]] = [:]
    init(_ filter: @escaping (String) -> Bool = { _ in true }) { self.filter = filter }
    func wants(_ name: String) -> Bool { filter(name) }
    func observe(_ name: String, _ v: UnsafeBufferPointer<Float>, shape: [Int]) { values[name] = Array(v); shapes[name] = shape }
}

/// The hand-written backward pass: against PyTorch autograd, against finite differences, and the task losses.
final class BackwardTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    static let blockGrads = ["attn.qkv.grad", "attn.matmul1.grad", "attn.softmax.grad", "attn.matmul2.grad",
                             "attn.proj.grad", "mlp.fc1.grad", "mlp.act.grad", "mlp.fc2.grad"]

    // MARK: PyTorch fixture

    func testViTTinyGradientsMatchPyTorchAutograd() throws {
        try Fixtures.require()
        let model = try VisionTransformer(path: Fixtures.vitTiny)
        let golden = try TensorFile(path: Fixtures.path("vit_tiny_grads_img0-1.safetensors"))
        let names = [0, 11].flatMap { i in Self.blockGrads.map { "blocks.\(i).\($0)" } } + ["head.grad"]
        let taps = FilteredTaps { names.contains($0) }
        let input = try golden.floatTensor("input_nchw")
        let start = Date()
        let logits = model.forwardBackward(input, loss: .fisherArgmax, observer: taps)
        print(String(format: "forwardBackward, ViT-Tiny, 2 images: %.0f ms", Date().timeIntervalSince(start) * 1000))

        let logitErr = relativeError(logits.array, try golden.floatTensor("logits").array)
        print(String(format: "logits: max rel err %.2e", logitErr))
        XCTAssertLessThan(logitErr, 1e-4)
        let labels = (0..<2).map { i in (0..<1000).max { logits[i * 1000 + $0] < logits[i * 1000 + $1] }! }
        XCTAssertEqual(labels, try golden.integers("labels"))
        for n in names {
            let ref = try golden.floatTensor(n)
            XCTAssertEqual(taps.shapes[n], ref.shape, n)
            let err = relativeError(taps.values[n] ?? [], ref.array)
            print(String(format: "%@: max|ours-ref|/max|ref| = %.2e", n, err))
            XCTAssertLessThanOrEqual(err, 1e-3, n)
        }
    }

    // MARK: finite differences

    /// Every op output's gradient against a central difference of the loss along a random direction.
    func checkDirectionalDerivatives(distilled: Bool, multiplied: Bool = false) throws {
        let tiny = try TinyRandomViT.make(in: dir, distilled: distilled)
        let model = multiplied ? withHiddenMultipliers(tiny) : tiny
        let images = TinyRandomViT.images(2)
        let taps = FilteredTaps()
        let logits = model.forwardBackward(images, loss: .fisherArgmax, observer: taps)
        let targets = TaskLoss.fisherArgmax.targets(logits: logits)
        var ops = ["patch_embed"] + (0..<TinyRandomViT.depth).flatMap { i in
            Self.blockGrads.map { "blocks.\(i).\($0.dropLast(".grad".count))" }
        } + ["head"]
        if distilled { ops.append("head_dist") }

        var rng = SeededRandom(seed: 99)
        for op in ops {
            let grad = try XCTUnwrap(taps.values[op + ".grad"], op)
            let direction = (0..<grad.count).map { _ in rng.normal() }
            // The op's own output (the GELU output is tapped as fc2's input), to size the step.
            let activation = taps.values[op.hasSuffix("mlp.act") ? op.replacingOccurrences(of: "mlp.act", with: "mlp.fc2.input") : op] ?? []
            XCTAssertEqual(activation.count, grad.count, op)
            let rms = (activation.reduce(0) { $0 + Double($1) * Double($1) } / Double(max(1, activation.count))).squareRoot()
            let step = 1e-2 * max(rms, 1e-2)
            let (analytic, numeric, rel) = GradientCheck.compare(op: op, grad: grad, direction: direction, step: step, targets: targets) {
                model.logits(images, perturbing: $0)
            }
            print(String(format: "%@: analytic %.6e numeric %.6e rel %.1e", op, analytic, numeric, rel))
            XCTAssertLessThan(rel, 1e-2, op)
        }
    }

    func testGradientsMatchFiniteDifferences() throws { try checkDirectionalDerivatives(distilled: false) }

    func testDistilledGradientsMatchFiniteDifferences() throws { try checkDirectionalDerivatives(distilled: true) }

    /// GELU smoothing's per-channel multiplier before fc2: `…mlp.act` is then fc2's (multiplied) input.
    func testGradientsThroughHiddenMultipliersMatchFiniteDifferences() throws {
        try checkDirectionalDerivatives(distilled: false, multiplied: true)
    }

    /// `model` with a random per-channel multiplier in (0.1, 2) on every block's GELU output.
    func withHiddenMultipliers(_ model: VisionTransformer) -> VisionTransformer {
        var rng = SeededRandom(seed: 17)
        let hidden = model.config.mlpHidden
        let blocks = model.blocks.map { b in
            ViTBlock(norm1: b.norm1, qkv: b.qkv, attention: b.attention, proj: b.proj, norm2: b.norm2, fc1: b.fc1, fc2: b.fc2,
                     hiddenMultiplier: Tensor(shape: [hidden], values: (0..<hidden).map { _ in Float(0.1 + 1.9 * rng.uniform()) }))
        }
        return VisionTransformer(spec: model.spec, patchEmbed: model.patchEmbed, clsToken: model.clsToken, distToken: model.distToken,
                                 posEmbed: model.posEmbed, blocks: blocks, norm: model.norm, head: model.head, headDist: model.headDist)
    }

    // MARK: forward taps

    func testForwardTapsEqualForward() throws {
        let model = try TinyRandomViT.make(in: dir, distilled: true)
        let images = TinyRandomViT.images(2)
        let plain = FilteredTaps(), traced = FilteredTaps()
        let z = model.forward(images, observer: plain)
        let z2 = model.forwardBackward(images, loss: .fisherArgmax, observer: traced)
        XCTAssertEqual(z.array, z2.array)
        let multiplied = withHiddenMultipliers(model)
        let zm = multiplied.forward(images)
        XCTAssertEqual(zm.array, multiplied.forwardBackward(images, loss: .fisherArgmax, observer: nil).array, "with hidden multipliers")
        XCTAssertGreaterThan(relativeError(zm.array, z.array), 1e-3, "the multipliers are applied")
        for (name, v) in plain.values {
            XCTAssertEqual(traced.shapes[name], plain.shapes[name], name)
            XCTAssertEqual(traced.values[name], v, name)
        }
        // The op outputs: matmul2 is proj's input in head-major layout; logits are the mean of both heads.
        let (b, t, h, hd) = (2, 18, TinyRandomViT.heads, TinyRandomViT.embed / TinyRandomViT.heads)
        let ctx = try XCTUnwrap(traced.values["blocks.1.attn.proj.input"]), m2 = try XCTUnwrap(traced.values["blocks.1.attn.matmul2"])
        XCTAssertEqual(traced.shapes["blocks.1.attn.matmul2"], [b, h, t, hd])
        XCTAssertEqual(m2[((1 * h + 1) * t + 5) * hd + 3], ctx[(1 * t + 5) * h * hd + hd + 3])
        XCTAssertEqual(traced.shapes["blocks.0.attn.matmul1"], [b, h, t, t])
        let head = try XCTUnwrap(traced.values["head"]), headDist = try XCTUnwrap(traced.values["head_dist"])
        for j in 0..<z.count { XCTAssertEqual(z[j], (head[j] + headDist[j]) * 0.5) }
    }

    // MARK: task losses

    func headGrad(_ model: VisionTransformer, _ images: Tensor, _ loss: TaskLoss, first: Int = 0) -> [Float] {
        let taps = FilteredTaps { $0 == "head.grad" }
        _ = model.forwardBackward(images, loss: loss, firstImageIndex: first, observer: taps)
        return taps.values["head.grad"] ?? []
    }

    func testFisherSampledIsSeededPerImage() throws {
        let model = try TinyRandomViT.make(in: dir)
        let images = TinyRandomViT.images(2)
        let loss = TaskLoss.fisherSampled(samples: 8, seed: 42)
        let a = headGrad(model, images, loss), again = headGrad(model, images, loss)
        XCTAssertEqual(a, again)
        let per = 3 * 32 * 32
        let one = (0..<2).flatMap { i in
            headGrad(model, Tensor(shape: [1, 3, 32, 32], values: Array(UnsafeBufferPointer(start: images.data + i * per, count: per))),
                     loss, first: i)
        }
        XCTAssertLessThan(zip(a, one).map { abs($0 - $1) }.max()!, 1e-5)
        let other = headGrad(model, images, .fisherSampled(samples: 8, seed: 43))
        XCTAssertGreaterThan(zip(a, other).map { abs($0 - $1) }.max()!, 0.05)
        // Each image's gradient is p − (1/k)·counts: rows sum to zero.
        for i in 0..<2 { XCTAssertEqual(a[(i * 10)..<(i * 10 + 10)].reduce(0, +), 0, accuracy: 1e-5) }
    }

    func testPTQ4ViTKLGradientVanishesAtTheFPModel() throws {
        let model = try TinyRandomViT.make(in: dir)
        let images = TinyRandomViT.images(2)
        let kl = headGrad(model, images, .ptq4vitKL), fisher = headGrad(model, images, .fisherArgmax)
        let ratio = Double(kl.map(abs).max()!) / Double(fisher.map(abs).max()!)
        print(String(format: "ptq4vit-kl / fisher-argmax max|head.grad| = %.2e", ratio))
        XCTAssertLessThan(ratio, 1e-3)
    }

    func testTaskLossNames() {
        for loss in [TaskLoss.fisherArgmax, .fisherSampled(samples: 3, seed: 9), .ptq4vitKL] {
            XCTAssertEqual(TaskLoss(name: loss.name, samples: 3, seed: 9), loss)
        }
        XCTAssertNil(TaskLoss(name: "kl", samples: 1, seed: 0))
    }
}
