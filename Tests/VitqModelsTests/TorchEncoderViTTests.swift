import Foundation
import VitqFormats
import VitqModels
import VitqTensor
import VitqTestSupport
import XCTest

/// Records every tap it sees.
private final class Recorder: ForwardObserver {
    var taps: [String: (values: [Float], shape: [Int])] = [:]
    func wants(_ name: String) -> Bool { true }
    func observe(_ name: String, _ values: UnsafeBufferPointer<Float>, shape: [Int]) { taps[name] = (Array(values), shape) }
}

/// The CIFAR-10 ViT of SOURCES.md §3 (torch.nn.TransformerEncoderLayer blocks) against the numpy
/// reference logits, and the torch-vit family's backward against finite differences.
final class TorchEncoderViTTests: XCTestCase {
    /// The first `n` images of the CIFAR binary batch, normalised, and their labels.
    private func cifarImages(_ n: Int, mean: [Float], std: [Float]) throws -> (Tensor, [Int]) {
        let raw = try Data(contentsOf: URL(fileURLWithPath: Fixtures.cifarImages))
        XCTAssertEqual(raw.count, 932 * 3073)
        let x = Tensor(zeros: [n, 3, 32, 32])
        var labels: [Int] = []
        raw.withUnsafeBytes { (p: UnsafeRawBufferPointer) in
            for i in 0..<n {
                labels.append(Int(p[i * 3073]))
                for c in 0..<3 { for j in 0..<1024 {
                    x.data[(i * 3 + c) * 1024 + j] = (Float(p[i * 3073 + 1 + c * 1024 + j]) / 255 - mean[c]) / std[c]
                } }
            }
        }
        return (x, labels)
    }

    func testLogitsMatchReferenceOnAll932Images() throws {
        try Fixtures.require()
        let file = try TensorFile.open(path: Fixtures.cifarViT)
        XCTAssertEqual(ModelFamilies.detect(file).name, "torch-vit")
        let model = try ModelFamilies.load(file: file)
        XCTAssertEqual(model.preprocess.mean, [0.4914, 0.4822, 0.4465])
        XCTAssertEqual(model.family.summary(of: model).configSource, "known checkpoint (sha256)")
        let (x, labels) = try cifarImages(932, mean: model.preprocess.mean, std: model.preprocess.std)
        let logits = model.forward(x, observer: nil)
        let refData = try Data(contentsOf: URL(fileURLWithPath: Fixtures.cifarRefLogits))
        let ref = refData.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(ref.count, 9320)
        var maxRel: Float = 0, correct = 0, sameTop1 = 0
        for i in 0..<932 {
            let r = Array(ref[i * 10..<(i + 1) * 10]), z = (0..<10).map { logits.data[i * 10 + $0] }
            let scale = r.map(abs).max()!
            for j in 0..<10 { maxRel = max(maxRel, abs(z[j] - r[j]) / scale) }
            let top = z.indices.max { z[$0] < z[$1] }!, rtop = r.indices.max { r[$0] < r[$1] }!
            if top == labels[i] { correct += 1 }
            if top == rtop { sameTop1 += 1 }
        }
        print("torch-vit CIFAR-10: max relative logit error \(maxRel), top-1 \(Double(correct) / 932)")
        XCTAssertLessThan(maxRel, 1e-4)
        XCTAssertEqual(sameTop1, 932)
        XCTAssertEqual(correct, 654) // 70.2%
    }

    func testTapsExistAndSpecRoundTrips() throws {
        try Fixtures.require()
        let file = try TensorFile.open(path: Fixtures.cifarViT)
        let model = try ModelFamilies.load(file: file)
        let (x, _) = try cifarImages(2, mean: model.preprocess.mean, std: model.preprocess.std)
        let rec = Recorder()
        _ = model.forwardBackward(x, loss: .fisherArgmax, firstImageIndex: 0, observer: rec)
        var names = ["patch_embed.proj.input", "patch_embed.proj", "patch_embed.grad", "head", "head.input", "head.grad", "logits"]
        for i in 0..<6 {
            for op in ["attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"] { names += ["blocks.\(i).\(op)", "blocks.\(i).\(op).input", "blocks.\(i).\(op).grad"] }
            for a in ["softmax", "matmul1", "matmul2"] { names += ["blocks.\(i).attn.\(a)", "blocks.\(i).attn.\(a).grad"] }
        }
        for n in names { XCTAssertNotNil(rec.taps[n], n) }
        XCTAssertEqual(rec.taps["blocks.0.attn.softmax"]?.shape, [2, 8, 65, 65])
        XCTAssertEqual(rec.taps["blocks.0.attn.matmul2"]?.shape, [2, 8, 65, 16])
        XCTAssertEqual(model.linearOps.map(\.name).count, 26)
        let again = try model.family.load(file: file, spec: try model.encodedSpec(), source: "spec")
        XCTAssertEqual(try again.encodedSpec(), try model.encodedSpec())
        XCTAssertEqual(model.family.name, ModelFamilies.tagged("torch-vit")?.name)
    }

    func testOverridesWinOverTheKnownCheckpoint() throws {
        try Fixtures.require()
        let file = try TensorFile.open(path: Fixtures.cifarViT)
        let spec = try TorchEncoderViTFamily().resolve(file: file, overrides: ModelOverrides(numHeads: 4, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5]))
        XCTAssertEqual(spec.numHeads, 4)
        XCTAssertEqual(spec.preprocess.mean, [0.5, 0.5, 0.5])
        XCTAssertEqual(spec.configSource, "command line")
    }
}
