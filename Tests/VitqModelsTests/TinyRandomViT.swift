import Foundation
import VitqFormats
import VitqModels
import VitqTensor

/// A tiny random ViT (embed 32, depth 2, heads 2, 32×32 images, patch 8, 10 classes), with weights
/// large enough that attention, GELU and LayerNorm are far from linear: for gradient checks.
enum TinyRandomViT {
    static let embed = 32, depth = 2, heads = 2, img = 32, patch = 8, classes = 10

    /// Writes the model to `dir` and loads it; `distilled` adds a distillation token and head.
    static func make(in dir: String, distilled: Bool = false, seed: UInt64 = 1) throws -> VisionTransformer {
        var rng = SeededRandom(seed: seed)
        var w = SafeTensorsWriter()
        let e = embed, hidden = 4 * e, tokens = (img / patch) * (img / patch) + (distilled ? 2 : 1)
        func tensor(_ name: String, _ shape: [Int], std: Double, mean: Double = 0) {
            let n = shape.reduce(1, *)
            w.add(name, shape: shape, floats: (0..<n).map { _ in Float(mean + std * rng.normal()) })
        }
        func linear(_ name: String, out: Int, in inF: Int, gain: Double = 1) {
            tensor("\(name).weight", [out, inF], std: gain / Double(inF).squareRoot())
            tensor("\(name).bias", [out], std: 0.1)
        }
        tensor("cls_token", [1, 1, e], std: 0.5)
        if distilled { tensor("dist_token", [1, 1, e], std: 0.5) }
        tensor("pos_embed", [1, tokens, e], std: 0.5)
        tensor("patch_embed.proj.weight", [e, 3, patch, patch], std: 1 / Double(3 * patch * patch).squareRoot())
        tensor("patch_embed.proj.bias", [e], std: 0.1)
        for i in 0..<depth {
            let b = "blocks.\(i)"
            for n in ["norm1", "norm2"] {
                tensor("\(b).\(n).weight", [e], std: 0.2, mean: 1)
                tensor("\(b).\(n).bias", [e], std: 0.2)
            }
            linear("\(b).attn.qkv", out: 3 * e, in: e, gain: 1.5)
            linear("\(b).attn.proj", out: e, in: e)
            linear("\(b).mlp.fc1", out: hidden, in: e, gain: 1.5)
            linear("\(b).mlp.fc2", out: e, in: hidden)
        }
        tensor("norm.weight", [e], std: 0.2, mean: 1); tensor("norm.bias", [e], std: 0.2)
        linear("head", out: classes, in: e, gain: 2)
        if distilled { linear("head_dist", out: classes, in: e, gain: 2) }
        let path = dir + "/tiny\(distilled ? "_distilled" : "")_\(seed).safetensors"
        try w.write(to: path)
        return try VisionTransformer(path: path, overrides: ModelOverrides(numHeads: heads))
    }

    /// Standard-normal images [b, 3, 32, 32].
    static func images(_ b: Int, seed: UInt64 = 7) -> Tensor {
        var rng = SeededRandom(seed: seed)
        return Tensor(shape: [b, 3, img, img], values: (0..<(b * 3 * img * img)).map { _ in Float(rng.normal()) })
    }
}
