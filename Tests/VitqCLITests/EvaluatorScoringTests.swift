import Foundation
import VitqData
import VitqFormats
import VitqModels
import VitqRuntime
import VitqTensor
import VitqTestSupport
import XCTest

/// `Evaluator` never counts a NaN logit, a label outside the head or a 0-class head as correct
/// (a NaN-weight model reported top-1 1.0000).
final class EvaluatorScoringTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// Four 16×16 images (the tiny model's input size) labelled 0, 1, 2, 0.
    func dataset(_ model: VisionTransformer) throws -> NpyImageDataset {
        var rng = SeededRandom(seed: 4)
        let n = 4, s = TinyViTFile.img
        try NpyWriter.write(uint8s: (0..<(n * s * s * 3)).map { _ in UInt8(truncatingIfNeeded: Int(rng.normal() * 60 + 128)) },
                            shape: [n, s, s, 3], to: dir + "/x.npy")
        try NpyWriter.write(int64s: [0, 1, 2, 0], shape: [n], to: dir + "/y.npy")
        return try NpyImageDataset(images: dir + "/x.npy", labels: dir + "/y.npy", preprocess: model.spec.preprocess)
    }

    /// The model with its head's bias replaced by `bias` (NaN makes every logit NaN).
    func withHeadBias(_ m: VisionTransformer, _ bias: [Float]) -> VisionTransformer {
        m.replacing(linear: { name, op in
            guard name == "head", let l = op as? Linear else { return op }
            return Linear(weight: l.weight, bias: Tensor(shape: [bias.count], values: bias))
        }, attention: { _, kernel in kernel })
    }

    func testNaNLogitsAreNeverCorrect() throws {
        let m = try VisionTransformer(path: try TinyViTFile.write(to: dir + "/m.safetensors"))
        let data = try dataset(m)
        let honest = try Evaluator.run(model: m, dataset: data, range: 0..<4, batch: 2)
        XCTAssertEqual(honest.top5Correct, 4, "3 classes: every label is in the top 5")
        let allNaN = try Evaluator.run(model: withHeadBias(m, [.nan, .nan, .nan]), dataset: data, range: 0..<4, batch: 2)
        XCTAssertTrue(allNaN.logits.allSatisfy(\.isNaN))
        XCTAssertEqual([allNaN.top1Correct, allNaN.top5Correct], [0, 0])
        // One NaN logit in a row leaves its ranking undefined: not correct either.
        let oneNaN = try Evaluator.run(model: withHeadBias(m, [0, .nan, 0]), dataset: data, range: 0..<4, batch: 4)
        XCTAssertEqual([oneNaN.top1Correct, oneNaN.top5Correct], [0, 0])
    }

    func testRankNeedsALabelOfTheHead() {
        let row: [Float] = [0.1, 0.9, 0.5]
        row.withUnsafeBufferPointer { r in
            XCTAssertEqual(Evaluator.rank(of: 1, in: r), 0)
            XCTAssertEqual(Evaluator.rank(of: 2, in: r), 1)
            XCTAssertEqual(Evaluator.rank(of: 0, in: r), 2)
            XCTAssertNil(Evaluator.rank(of: 3, in: r))
            XCTAssertNil(Evaluator.rank(of: -1, in: r))
        }
        // A 0-class head has no correct label (before, the empty ranking counted as top-1).
        [Float]().withUnsafeBufferPointer { XCTAssertNil(Evaluator.rank(of: 0, in: $0)) }
        // Ties favour the lower index; +Inf is an ordinary winner.
        [Float](arrayLiteral: 1, 1, .infinity).withUnsafeBufferPointer { r in
            XCTAssertEqual(Evaluator.rank(of: 0, in: r), 1)
            XCTAssertEqual(Evaluator.rank(of: 1, in: r), 2)
            XCTAssertEqual(Evaluator.rank(of: 2, in: r), 0)
        }
    }
}
