import Foundation
import VitqFormats
import VitqTensor

/// Random-weight models of the standard timm sizes, for benchmarks (`vitq synth`).
public enum SyntheticModel {
    /// The safetensors bytes-to-be of a random ViT/DeiT named by a timm name or a `vitq synth`
    /// alias (vit-tiny, vit-small, vit-base, deit-small, …). The file carries `timm_config`,
    /// `timm_class`, `mean`, `std` and `crop_pct` metadata so it loads without a sidecar.
    public static func vit(arch: String, seed: UInt64 = 0) throws -> SafeTensorsWriter {
        guard let k = KnownModels.lookup(arch) else {
            throw ModelError.badConfig(source: "--arch", key: "arch", detail: "'\(arch)' is not one of \(KnownModels.synthAliases.keys.sorted().joined(separator: ", "))")
        }
        var rng = SeededRandom(seed: seed)
        var w = SafeTensorsWriter()
        let e = k.embedDim, hidden = 4 * e, p = k.patchSize, classes = 1000
        let tokens = (224 / p) * (224 / p) + (k.distilled ? 2 : 1)
        func tensor(_ name: String, _ shape: [Int], std: Double, mean: Double = 0) {
            let n = shape.reduce(1, *)
            w.add(name, shape: shape, floats: (0..<n).map { _ in Float(mean + std * rng.normal()) })
        }
        tensor("cls_token", [1, 1, e], std: 0.02)
        if k.distilled { tensor("dist_token", [1, 1, e], std: 0.02) }
        tensor("pos_embed", [1, tokens, e], std: 0.02)
        tensor("patch_embed.proj.weight", [e, 3, p, p], std: 0.02)
        tensor("patch_embed.proj.bias", [e], std: 0.01)
        for i in 0..<k.depth {
            let b = "blocks.\(i)"
            for n in ["norm1", "norm2"] {
                tensor("\(b).\(n).weight", [e], std: 0.05, mean: 1)
                tensor("\(b).\(n).bias", [e], std: 0.02)
            }
            tensor("\(b).attn.qkv.weight", [3 * e, e], std: 0.02); tensor("\(b).attn.qkv.bias", [3 * e], std: 0.01)
            tensor("\(b).attn.proj.weight", [e, e], std: 0.02); tensor("\(b).attn.proj.bias", [e], std: 0.01)
            tensor("\(b).mlp.fc1.weight", [hidden, e], std: 0.02); tensor("\(b).mlp.fc1.bias", [hidden], std: 0.01)
            tensor("\(b).mlp.fc2.weight", [e, hidden], std: 0.02); tensor("\(b).mlp.fc2.bias", [e], std: 0.01)
        }
        tensor("norm.weight", [e], std: 0.05, mean: 1); tensor("norm.bias", [e], std: 0.02)
        tensor("head.weight", [classes, e], std: 0.02); tensor("head.bias", [classes], std: 0.01)
        if k.distilled { tensor("head_dist.weight", [classes, e], std: 0.02); tensor("head_dist.bias", [classes], std: 0.01) }
        w.metadata = [
            "timm_class": k.distilled ? "VisionTransformerDistilled" : "VisionTransformer",
            "timm_config": "{\"img_size\": 224, \"patch_size\": \(p), \"embed_dim\": \(e), \"depth\": \(k.depth), \"num_heads\": \(k.numHeads), \"num_classes\": \(classes), \"mlp_ratio\": 4.0}",
            "mean": "[\(k.preprocess.mean.map { "\($0)" }.joined(separator: ", "))]",
            "std": "[\(k.preprocess.std.map { "\($0)" }.joined(separator: ", "))]",
            "crop_pct": "\(k.preprocess.cropPct)",
            "architecture": k.name,
            "vitq_synthetic_seed": "\(seed)",
        ]
        return w
    }
}
