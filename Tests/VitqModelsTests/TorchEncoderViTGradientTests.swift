import Foundation
import VitqData
import VitqModels
import VitqTensor
import XCTest

/// The torch-vit backward against central finite differences on a small random instance: the
/// gradient tap of each linear op's output, summed over rows, is dL/d(its bias).
final class TorchEncoderViTGradientTests: XCTestCase {
    private final class Recorder: ForwardObserver {
        var taps: [String: [Float]] = [:]
        func wants(_ name: String) -> Bool { name.hasSuffix(".grad") }
        func observe(_ name: String, _ values: UnsafeBufferPointer<Float>, shape: [Int]) { taps[name] = Array(values) }
    }

    private final class Random {
        var rng = SeededRandom(seed: 7)
        func uniform() -> Double { rng.uniform() }
        func rand(_ shape: [Int], _ s: Float) -> Tensor {
            let n = shape.reduce(1, *)
            return Tensor(shape: shape, values: (0..<n).map { _ in Float(rng.uniform() * 2 - 1) * s })
        }
    }

    func testBiasGradientsMatchFiniteDifferences() throws {
        let me = Random()
        let e = 8, hidden = 12, classes = 5
        var pre = PreprocessConfig()
        pre.inputSize = 8; pre.cropPct = 1
        let spec = TorchViTSpec(embedDim: e, depth: 2, numHeads: 2, mlpHidden: hidden, patchSize: 4, imgSize: 8, inChans: 3,
                                numClasses: classes, layerNormEps: 1e-5, preprocess: pre, configSource: "test")
        var linears: [String: (Tensor, [Float])] = [:]
        func lin(_ name: String, _ out: Int, _ inF: Int) -> (Tensor, [Float]) {
            let w = me.rand([out, inF], 1 / Float(inF).squareRoot())
            let b = (0..<out).map { _ in Float(me.uniform() - 0.5) * 0.2 }
            linears[name] = (w, b); return (w, b)
        }
        func ln() -> LayerNorm {
            LayerNorm(weight: Tensor(shape: [e], values: (0..<e).map { _ in 1 + Float(me.uniform() - 0.5) * 0.4 }),
                      bias: Tensor(shape: [e], values: (0..<e).map { _ in Float(me.uniform() - 0.5) * 0.2 }), eps: 1e-5)
        }
        for name in spec.linearOpNames {
            let (out, inF): (Int, Int) = name == "patch_embed.proj" ? (e, 48) : name.hasSuffix("qkv") ? (3 * e, e)
                : name.hasSuffix("fc1") ? (hidden, e) : name.hasSuffix("fc2") ? (e, hidden) : name == "head" ? (classes, e) : (e, e)
            _ = lin(name, out, inF)
        }
        let norms = (0..<5).map { _ in ln() }
        let cls = me.rand([1, 1, e], 1), pos = me.rand([1, 5, e], 0.5)
        let images = me.rand([2, 3, 8, 8], 1)
        func build(_ bias: [String: [Float]]) -> TorchEncoderViT {
            func op(_ n: String) -> Linear { Linear(weight: linears[n]!.0, bias: Tensor(shape: [linears[n]!.1.count], values: bias[n] ?? linears[n]!.1)) }
            let blocks = (0..<2).map { i in
                TorchEncoderBlock(qkv: op("blocks.\(i).attn.qkv"), attention: FloatAttention(), proj: op("blocks.\(i).attn.proj"),
                                  norm1: norms[2 * i], fc1: op("blocks.\(i).mlp.fc1"), fc2: op("blocks.\(i).mlp.fc2"), norm2: norms[2 * i + 1])
            }
            return TorchEncoderViT(spec: spec, patchEmbed: op("patch_embed.proj"), clsToken: cls, posEmbed: pos, blocks: blocks,
                                   headNorm: norms[4], head: op("head"))
        }
        let base = build([:])
        let rec = Recorder()
        let z0 = base.forwardBackward(images, loss: .fisherArgmax, firstImageIndex: 0, observer: rec)
        let targets = (0..<2).map { i in (0..<classes).max { z0.data[i * classes + $0] < z0.data[i * classes + $1] }! }
        func loss(_ m: TorchEncoderViT) -> Double {
            let z = m.forward(images, observer: nil)
            var total = 0.0
            for i in 0..<2 {
                let row = (0..<classes).map { Double(z.data[i * classes + $0]) }
                let mx = row.max()!, lse = mx + log(row.map { exp($0 - mx) }.reduce(0, +))
                total -= row[targets[i]] - lse
            }
            return total
        }
        let gradTap = ["patch_embed.proj": "patch_embed.grad", "head": "head.grad"]
        var checked = 0
        for name in spec.linearOpNames {
            let g = try XCTUnwrap(rec.taps[gradTap[name] ?? "\(name).grad"], name)
            let out = linears[name]!.1.count, rows = g.count / out
            for c in Set([0, out / 2, out - 1]) {
                var analytic = 0.0
                for r in 0..<rows { analytic += Double(g[r * out + c]) }
                let h: Float = 1e-2
                var plus = linears[name]!.1, minus = plus
                plus[c] += h; minus[c] -= h
                let fd = (loss(build([name: plus])) - loss(build([name: minus]))) / Double(2 * h)
                XCTAssertEqual(analytic, fd, accuracy: 2e-3 + 2e-2 * abs(fd), "\(name)[\(c)]")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 20)
    }
}
