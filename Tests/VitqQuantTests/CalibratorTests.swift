import Foundation
import VitqFormats
import VitqModels
import VitqQuant
import VitqTensor
import VitqTestSupport
import XCTest

/// Method `minmax`'s calibrators and partial quantization through the executor, on the distilled
/// DeiT micro fixture: the max rule against a hand-taken maximum, affine grids in the engine and
/// the file, a probe against quantizing the op alone by hand, and `keep_float: auto`.
final class CalibratorTests: XCTestCase {
    /// Standard-normal images [count, 3, S, S].
    func images(_ m: VisionTransformer, count: Int, seed: UInt64) -> Tensor {
        let c = m.config
        var rng = SeededRandom(seed: seed)
        return Tensor(shape: [count, c.inChans, c.imgSize, c.imgSize], values: (0..<(count * c.inChans * c.imgSize * c.imgSize)).map { _ in Float(rng.normal()) })
    }

    /// Stage 1 of `recipe` on `x` (one shard per `recipe.shardImages`) and its local executor.
    func executor(_ fp: VisionTransformer, _ recipe: Recipe, _ x: Tensor) throws -> LocalExecutor {
        let per = x.count / x.shape[0]
        let scorers = try SearchCalibration.shards(0..<x.shape[0], recipe: recipe).map { shard in
            try SearchCalibration.collect(model: fp, recipe: recipe, shard: shard, budget: MemoryBudget(), spillDirectory: NSTemporaryDirectory()) { r in
                let t = Tensor(zeros: [r.count] + Array(x.shape.dropFirst()))
                t.data.update(from: x.data + r.lowerBound * per, count: r.count * per)
                return t
            }
        }
        return LocalExecutor(scorers: scorers)
    }

    func testMaxCalibratorScalesAreTheLargestMagnitudes() throws {
        try Fixtures.require()
        let fp = try VisionTransformer(path: Fixtures.deitMicro)
        var recipe = Recipe()
        recipe.keepFloat = 0
        recipe.shardImages = 3
        let x = images(fp, count: 3, seed: 11)
        let decisions = try RangeCalibration.decisions(model: fp, recipe: recipe, executor: try executor(fp, recipe, x))
        // The same forward (one shard of 3 images, reproducible products) seen by a hand-made observer.
        final class MaxObserver: ForwardObserver {
            var m: [String: Float] = [:]
            func wants(_ name: String) -> Bool { name.hasSuffix("fc1.input") }
            func observe(_ name: String, _ v: UnsafeBufferPointer<Float>, shape: [Int]) { m[name] = max(m[name] ?? 0, v.map(abs).max()!) }
        }
        let o = MaxObserver()
        _ = Gemm.reproducible { fp.forward(x, observer: o) }
        for i in [0, 1] {
            guard case let .uniform(t) = decisions["blocks.\(i).mlp.fc1"]!.quantizers[1] else { return XCTFail("uniform input") }
            XCTAssertEqual(t.scales, [o.m["blocks.\(i).mlp.fc1.input"]! / 127], "input scale = max|x| / 127")
            XCTAssertEqual(t.zeroPoints, [0])
        }
        // Weights: max |w| of each row over 127.
        let lin = fp.blocks[0].fc1 as! Linear
        guard case let .uniform(w) = decisions["blocks.0.mlp.fc1"]!.quantizers[0] else { return XCTFail("uniform weight") }
        for r in [0, 5] { XCTAssertEqual(w.scales[r], Ops.maxAbs(lin.weight.data + r * lin.inFeatures, cols: lin.inFeatures) / 127) }
    }

    func testAffineActivationsRunBitExactInTheEngineAndTheFile() throws {
        try Fixtures.require()
        let fp = try VisionTransformer(path: Fixtures.deitMicro)
        var recipe = Recipe()
        recipe.keepFloat = 0
        recipe.activationSymmetric = false
        recipe.activationCalibrator = .mse
        let cal = MinMaxCalibrator(model: fp, recipe: recipe)
        cal.observe(images(fp, count: 4, seed: 1))
        let net = try cal.finish()
        // GELU outputs are one-sided: fc2's input gets a non-zero zero point; so do Q/K/V heads.
        guard case let .uniform(fc2)? = net.linear["blocks.0.mlp.fc2"].flatMap({ slot -> OperandQuant? in
            if case let .quantized(_, input) = slot { return input } else { return nil }
        }) else { return XCTFail("fc2 is quantized with a uniform input") }
        XCTAssertNotEqual(fc2.zeroPoints, [0], "an affine GELU-output grid")
        XCTAssertTrue(net.attention.values.contains { $0.q.isAffine || $0.k.isAffine || $0.v.isAffine })
        let x = images(fp, count: 3, seed: 4)
        let a = net.makeModel(.integer).forward(x, observer: nil).array, b = net.makeModel(.fakeQuant).forward(x, observer: nil).array
        XCTAssertEqual(a.map(\.bitPattern), b.map(\.bitPattern), "the engine and its double reference agree on affine grids")
        let dir = makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/affine.safetensors"
        try QModelFile.write(net, provenance: QModelProvenance(sourceSHA256: String(repeating: "0", count: 64), sourceName: "micro",
                                                               recipeJSON: recipe.canonicalJSON), to: path)
        let back = try QModelFile.read(try TensorFile(path: path)).model
        XCTAssertEqual(back.makeModel(.integer).forward(x, observer: nil).array.map(\.bitPattern), a.map(\.bitPattern), "the file keeps the zero points")
    }

    func testAProbeEqualsQuantizingThatOpAloneByHand() throws {
        try Fixtures.require()
        let fp = try VisionTransformer(path: Fixtures.deitMicro)
        var recipe = Recipe()
        recipe.keepFloat = 0
        recipe.shardImages = 2
        let x = images(fp, count: 4, seed: 21)
        let ex = try executor(fp, recipe, x)
        let decisions = try RangeCalibration.decisions(model: fp, recipe: recipe, executor: ex)
        let op = "blocks.1.mlp.fc1"
        let probe = try ex.run(.probe(ProbeTask(label: op, decisions: [decisions[op]!])), as: \.counts)
        // By hand: that op quantized, everything else float, image by image; KL and agreement in double.
        let d = decisions[op]!
        let net = QuantizedNetwork(float: fp, weights: [op: d.quantizers[0].uniform], inputs: [op: d.quantizers[1]], attention: [:])
        let q = net.makeModel(.integer)
        var kl = 0.0, agree = 0.0
        let per = x.count / 4, classes = fp.numClasses
        for i in 0..<4 {
            let xi = Tensor(zeros: [1] + Array(x.shape.dropFirst()))
            xi.data.update(from: x.data + i * per, count: per)
            let zf = fp.forward(xi).array.map(Double.init), zq = q.forward(xi, observer: nil).array.map(Double.init)
            let mf = zf.max()!, mq = zq.max()!
            let lf = log(zf.map { exp($0 - mf) }.reduce(0, +)) + mf, lq = log(zq.map { exp($0 - mq) }.reduce(0, +)) + mq
            for j in 0..<classes { kl += exp(zf[j] - lf) * ((zf[j] - lf) - (zq[j] - lq)) }
            if zf.firstIndex(of: mf) == zq.firstIndex(of: mq) { agree += 1 }
        }
        XCTAssertEqual(probe.count, 3)
        XCTAssertEqual(probe[2], 4)
        XCTAssertEqual(probe[1], agree)
        XCTAssertGreaterThan(probe[0], 0, "quantizing the op changes the logits")
        XCTAssertEqual(probe[0], kl, accuracy: 1e-4 * kl + 1e-9, "the probe's KL sum is the hand-computed one")
    }

    /// Probes restart at the quantized op's block from the stage-1 stream: the same bits as the
    /// whole forward from the pixels.
    func testRestartingAtABlockGivesTheFullForwardsBits() throws {
        try Fixtures.require()
        let fp = try VisionTransformer(path: Fixtures.deitMicro)
        var recipe = Recipe()
        recipe.keepFloat = 0
        recipe.shardImages = 3
        let x = images(fp, count: 3, seed: 5)
        let decisions = try RangeCalibration.decisions(model: fp, recipe: recipe, executor: try executor(fp, recipe, x))
        final class Stream: ForwardObserver {
            let tap: String
            var value: Tensor?
            init(_ tap: String) { self.tap = tap }
            func wants(_ name: String) -> Bool { name == tap }
            func observe(_ name: String, _ v: UnsafeBufferPointer<Float>, shape: [Int]) { value = Tensor(shape: shape, values: Array(v)) }
        }
        for op in ["blocks.1.mlp.fc1", "head"] {
            let d = decisions[op]!
            let net = QuantizedNetwork(float: fp, weights: [op: d.quantizers[0].uniform], inputs: [op: d.quantizers[1]], attention: [:])
            let q = net.makeModel(.integer) as! VisionTransformer
            let b = try XCTUnwrap(q.block(of: op))
            let stream = Stream(q.residualTap(block: b))
            let whole = q.forward(x, observer: stream).array
            // Both unfused (an observer is attached), as the same computation.
            let resumed = q.forward(fromBlock: b, residual: try XCTUnwrap(stream.value), observer: Stream("none")).array
            XCTAssertEqual(resumed.map(\.bitPattern), whole.map(\.bitPattern), "\(op): relative error \(relativeError(resumed, whole))")
        }
        XCTAssertNil(fp.block(of: "patch_embed.proj"), "the patch embedding comes before the blocks")
    }

    func testKeepFloatAutoLeavesTheMostSensitiveOpsInFloatUntilTheTarget() throws {
        try Fixtures.require()
        let fp = try VisionTransformer(path: Fixtures.deitMicro)
        var recipe = Recipe()
        recipe.activationBits = 4   // coarse enough that some op matters
        recipe.keepFloat = 0
        recipe.keepFloatAuto = true
        recipe.targetAgreement = 1
        recipe.maxKL = 1e-9        // unreachable: every point up to the cap is measured
        recipe.maxFloatOps = 3
        recipe.keepFloatOps = ["head"]
        recipe.shardImages = 2
        let x = images(fp, count: 4, seed: 3)
        let ex = try executor(fp, recipe, x)
        let decided = try RangeCalibration.decisions(model: fp, recipe: recipe, executor: ex)
        let (kept, report) = try SensitivityAnalysis.apply(model: fp, recipe: recipe, decisions: decided, executor: ex)
        let r = try XCTUnwrap(report)
        XCTAssertEqual(r.targetMet, false)
        XCTAssertEqual(r.curve.map(\.floatOps), [1, 2, 3, 4], "the named op, then 0...3 ranked ones")
        XCTAssertEqual(r.floatOps.count, 4)
        XCTAssertEqual(r.floatOps.first, "head")
        XCTAssertEqual(r.floatOps.dropFirst().map { $0 }, r.ranking.prefix(3).map(\.op), "the three most sensitive")
        XCTAssertEqual(r.ranking.map(\.kl), r.ranking.map(\.kl).sorted(by: >), "ranked by KL")
        XCTAssertFalse(r.ranking.contains { $0.op == "head" }, "named ops are not probed")
        for op in r.floatOps {
            XCTAssertTrue(SensitivityAnalysis.units(model: fp, decisions: kept).allSatisfy { $0 != op }, "\(op) is left in float")
        }
        // The curve's last point is the network that is returned.
        let fit = try SensitivityAnalysis.fit(kept, executor: ex)
        XCTAssertEqual(fit.kl, r.curve.last!.kl, accuracy: 1e-12)
        recipe.keepFloatOps = ["blocks.9.mlp.fc1"]
        XCTAssertThrowsError(try SensitivityAnalysis.apply(model: fp, recipe: recipe, decisions: decided, executor: ex)) { e in
            XCTAssertTrue("\(e)".contains("keep_float_ops") && "\(e)".contains("blocks.9.mlp.fc1"), "\(e)")
        }
    }
}

/// The probes' exponential is plain IEEE arithmetic; it must agree with libm's to rounding.
final class PortableExpTests: XCTestCase {
    func testPortableExpIsWithinThreeUlpsOfLibm() {
        var rng = SeededRandom(seed: 7)
        for _ in 0..<20_000 {
            let x = (rng.uniform() - 0.5) * 1400
            let a = portableExp(x), b = Foundation.exp(x)
            XCTAssertLessThanOrEqual(abs(a - b), 3 * b.ulp, "exp(\(x))")
        }
        XCTAssertEqual(portableExp(0), 1)
        XCTAssertEqual(portableExp(-800), 0)
        XCTAssertEqual(portableExp(800), .infinity)
    }
}
