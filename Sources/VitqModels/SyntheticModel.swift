import Foundation
import VitqFormats
import VitqTensor

/// Random-weight models of the standard timm sizes, for benchmarks (`vitq synth`).
public enum SyntheticModel {
    /// The random model `arch` names: a Swin alias (``swinAliases``), else a ViT/DeiT (``vit(arch:seed:)``).
    public static func named(_ arch: String, seed: UInt64 = 0) throws -> SafeTensorsWriter {
        if let c = swinAliases[arch] { return swin(c, name: arch, seed: seed) }
        return try vit(arch: arch, seed: seed)
    }

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

extension SyntheticModel {
    /// The `vitq synth` Swin sizes (timm's swin_tiny/small_patch4_window7_224).
    public static let swinAliases: [String: SwinConfig] = {
        var tiny = SwinConfig()
        tiny.embedDim = 96; tiny.depths = [2, 2, 6, 2]; tiny.numHeads = [3, 6, 12, 24]
        var small = tiny
        small.depths = [2, 2, 18, 2]
        return ["swin-tiny": tiny, "swin-small": small]
    }()

    /// The safetensors bytes-to-be of a random Swin with timm's state-dict layout and
    /// `timm_class` / `timm_config` metadata, so it loads without a sidecar.
    public static func swin(_ c: SwinConfig, name: String, seed: UInt64 = 0) -> SafeTensorsWriter {
        var rng = SeededRandom(seed: seed)
        var w = SafeTensorsWriter()
        func tensor(_ key: String, _ shape: [Int], std: Double, mean: Double = 0) {
            w.add(key, shape: shape, floats: (0..<shape.reduce(1, *)).map { _ in Float(mean + std * rng.normal()) })
        }
        func norm(_ key: String, _ dim: Int) { tensor("\(key).weight", [dim], std: 0.05, mean: 1); tensor("\(key).bias", [dim], std: 0.02) }
        func linear(_ key: String, out: Int, in inF: Int, bias: Bool = true) {
            tensor("\(key).weight", [out, inF], std: 0.02)
            if bias { tensor("\(key).bias", [out], std: 0.01) }
        }
        let e = c.embedDim, p = c.patchSize
        tensor("patch_embed.proj.weight", [e, c.inChans, p, p], std: 0.02); tensor("patch_embed.proj.bias", [e], std: 0.01)
        norm("patch_embed.norm", e)
        for s in 0..<c.stages {
            let d = c.dim(s), win = c.window(s), hidden = Int(Double(d) * c.mlpRatio)
            if s > 0 {
                norm("layers.\(s).downsample.norm", 4 * c.dim(s - 1))
                linear("layers.\(s).downsample.reduction", out: d, in: 4 * c.dim(s - 1), bias: false)
            }
            for b in 0..<c.depths[s] {
                let pre = "layers.\(s).blocks.\(b)"
                norm("\(pre).norm1", d)
                tensor("\(pre).attn.relative_position_bias_table", [(2 * win - 1) * (2 * win - 1), c.numHeads[s]], std: 0.02)
                linear("\(pre).attn.qkv", out: 3 * d, in: d); linear("\(pre).attn.proj", out: d, in: d)
                norm("\(pre).norm2", d)
                linear("\(pre).mlp.fc1", out: hidden, in: d); linear("\(pre).mlp.fc2", out: d, in: hidden)
            }
        }
        norm("norm", c.dim(c.stages - 1))
        linear("head.fc", out: c.numClasses, in: c.dim(c.stages - 1))
        w.metadata = [
            "timm_class": "SwinTransformer",
            "timm_config": "{\"img_size\": \(c.imgSize), \"patch_size\": \(p), \"window_size\": \(c.windowSize), \"embed_dim\": \(e), "
                + "\"depths\": \(c.depths), \"num_heads\": \(c.numHeads), \"mlp_ratio\": \(c.mlpRatio), \"num_classes\": \(c.numClasses)}",
            "architecture": name,
            "vitq_synthetic_seed": "\(seed)",
        ]
        return w
    }
}
