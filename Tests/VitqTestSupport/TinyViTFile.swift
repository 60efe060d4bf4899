import Foundation
import VitqFormats
import VitqTensor

/// A tiny random ViT in timm's state-dict layout (embed 8, depth 1, 2 heads, 16×16 images,
/// patch 8, 3 classes), written with the project's ``SafeTensorsWriter``: the seed of the
/// crafted-file tests and the file fuzzers. `replace` swaps one tensor's shape and values
/// (a crafted case); a `timm_config` with the head count is included so it loads without flags.
public enum TinyViTFile {
    public static let embed = 8, depth = 1, heads = 2, img = 16, patch = 8, classes = 3

    /// The writer for the model, with tensor `name` replaced by (`shape`, `values`) when given.
    public static func writer(seed: UInt64 = 1, replace: [String: (shape: [Int], values: [Float])] = [:]) -> SafeTensorsWriter {
        var rng = SeededRandom(seed: seed)
        var w = SafeTensorsWriter()
        let e = embed, hidden = 2 * e, tokens = (img / patch) * (img / patch) + 1
        func tensor(_ name: String, _ shape: [Int], std: Double, mean: Double = 0) {
            if let r = replace[name] { w.add(name, shape: r.shape, floats: r.values); return }
            w.add(name, shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in Float(mean + std * rng.normal()) })
        }
        tensor("cls_token", [1, 1, e], std: 0.5)
        tensor("pos_embed", [1, tokens, e], std: 0.5)
        tensor("patch_embed.proj.weight", [e, 3, patch, patch], std: 0.1)
        tensor("patch_embed.proj.bias", [e], std: 0.1)
        for i in 0..<depth {
            let b = "blocks.\(i)"
            for n in ["norm1", "norm2"] {
                tensor("\(b).\(n).weight", [e], std: 0.2, mean: 1)
                tensor("\(b).\(n).bias", [e], std: 0.2)
            }
            tensor("\(b).attn.qkv.weight", [3 * e, e], std: 0.3); tensor("\(b).attn.qkv.bias", [3 * e], std: 0.1)
            tensor("\(b).attn.proj.weight", [e, e], std: 0.3); tensor("\(b).attn.proj.bias", [e], std: 0.1)
            tensor("\(b).mlp.fc1.weight", [hidden, e], std: 0.3); tensor("\(b).mlp.fc1.bias", [hidden], std: 0.1)
            tensor("\(b).mlp.fc2.weight", [e, hidden], std: 0.3); tensor("\(b).mlp.fc2.bias", [e], std: 0.1)
        }
        tensor("norm.weight", [e], std: 0.2, mean: 1); tensor("norm.bias", [e], std: 0.2)
        tensor("head.weight", [classes, e], std: 0.5); tensor("head.bias", [classes], std: 0.1)
        w.metadata = [
            "timm_class": "VisionTransformer",
            "timm_config": "{\"img_size\": \(img), \"patch_size\": \(patch), \"embed_dim\": \(e), \"depth\": \(depth), \"num_heads\": \(heads), \"num_classes\": \(classes)}",
            "mean": "[0.5, 0.5, 0.5]", "std": "[0.5, 0.5, 0.5]", "crop_pct": "0.9",
        ]
        return w
    }

    /// Writes the model to `path` (see ``writer(seed:replace:)``) and returns `path`.
    @discardableResult
    public static func write(to path: String, seed: UInt64 = 1, replace: [String: (shape: [Int], values: [Float])] = [:]) throws -> String {
        try writer(seed: seed, replace: replace).write(to: path)
        return path
    }
}
