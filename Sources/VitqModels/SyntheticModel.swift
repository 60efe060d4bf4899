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

    /// One tensor of a random model: its key, shape and the normal distribution it is drawn from.
    public struct TensorSpec: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public let std: Double, mean: Double
        /// The number of floats.
        public var count: Int { shape.reduce(1, *) }
    }

    /// The safetensors bytes-to-be of a random ViT/DeiT named by a timm name or a `vitq synth`
    /// alias (vit-tiny, vit-small, vit-base, vit-large, vit-huge, deit-small, …). The file carries
    /// `timm_config`, `timm_class`, `mean`, `std` and `crop_pct` metadata so it loads without a sidecar.
    public static func vit(arch: String, seed: UInt64 = 0) throws -> SafeTensorsWriter {
        let k = try known(arch)
        var w = materialize(try vitTensors(arch: arch), seed: seed)
        w.metadata = [
            "timm_class": k.distilled ? "VisionTransformerDistilled" : "VisionTransformer",
            "timm_config": "{\"img_size\": 224, \"patch_size\": \(k.patchSize), \"embed_dim\": \(k.embedDim), \"depth\": \(k.depth), \"num_heads\": \(k.numHeads), \"num_classes\": 1000, \"mlp_ratio\": 4.0}",
            "mean": "[\(k.preprocess.mean.map { "\($0)" }.joined(separator: ", "))]",
            "std": "[\(k.preprocess.std.map { "\($0)" }.joined(separator: ", "))]",
            "crop_pct": "\(k.preprocess.cropPct)",
            "architecture": k.name,
            "vitq_synthetic_seed": "\(seed)",
        ]
        return w
    }

    /// The tensors of ``vit(arch:seed:)``'s model, in the order they are drawn, without drawing them
    /// (timm's state-dict keys and shapes, 1000 classes).
    public static func vitTensors(arch: String) throws -> [TensorSpec] {
        let k = try known(arch)
        let e = k.embedDim, hidden = 4 * e, p = k.patchSize, classes = 1000
        let tokens = (224 / p) * (224 / p) + (k.distilled ? 2 : 1)
        var specs: [TensorSpec] = []
        func tensor(_ name: String, _ shape: [Int], std: Double, mean: Double = 0) {
            specs.append(TensorSpec(name: name, shape: shape, std: std, mean: mean))
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
        return specs
    }

    /// The known-model entry `arch` names, or a one-line error listing the names `vitq synth` takes.
    static func known(_ arch: String) throws -> KnownModels.Entry {
        guard let k = KnownModels.lookup(arch) else {
            let names = (Array(KnownModels.synthAliases.keys) + Array(swinAliases.keys)).sorted()
            throw ModelError.badConfig(source: "--arch", key: "arch", detail: "'\(arch)' is not one of \(names.joined(separator: ", "))")
        }
        return k
    }

    /// The tensors of `specs`, drawn in order from one seeded normal stream.
    static func materialize(_ specs: [TensorSpec], seed: UInt64) -> SafeTensorsWriter {
        var rng = SeededRandom(seed: seed)
        var w = SafeTensorsWriter()
        for s in specs {
            w.add(s.name, shape: s.shape, floats: (0..<s.count).map { _ in Float(s.mean + s.std * rng.normal()) })
        }
        return w
    }
}

extension SyntheticModel {
    /// The `vitq synth` Swin sizes (timm's swin_{tiny,small,base,large}_patch4_window7_224).
    public static let swinAliases: [String: SwinConfig] = {
        var tiny = SwinConfig()
        tiny.embedDim = 96; tiny.depths = [2, 2, 6, 2]; tiny.numHeads = [3, 6, 12, 24]
        var small = tiny
        small.depths = [2, 2, 18, 2]
        var base = small
        base.embedDim = 128; base.numHeads = [4, 8, 16, 32]
        var large = small
        large.embedDim = 192; large.numHeads = [6, 12, 24, 48]
        return ["swin-tiny": tiny, "swin-small": small, "swin-base": base, "swin-large": large]
    }()

    /// The safetensors bytes-to-be of a random Swin with timm's state-dict layout and
    /// `timm_class` / `timm_config` metadata, so it loads without a sidecar.
    public static func swin(_ c: SwinConfig, name: String, seed: UInt64 = 0) -> SafeTensorsWriter {
        var w = materialize(swinTensors(c), seed: seed)
        w.metadata = [
            "timm_class": "SwinTransformer",
            "timm_config": "{\"img_size\": \(c.imgSize), \"patch_size\": \(c.patchSize), \"window_size\": \(c.windowSize), \"embed_dim\": \(c.embedDim), "
                + "\"depths\": \(c.depths), \"num_heads\": \(c.numHeads), \"mlp_ratio\": \(c.mlpRatio), \"num_classes\": \(c.numClasses)}",
            "architecture": name,
            "vitq_synthetic_seed": "\(seed)",
        ]
        return w
    }

    /// The tensors of ``swin(_:name:seed:)``'s model, in the order they are drawn.
    public static func swinTensors(_ c: SwinConfig) -> [TensorSpec] {
        var specs: [TensorSpec] = []
        func tensor(_ key: String, _ shape: [Int], std: Double, mean: Double = 0) {
            specs.append(TensorSpec(name: key, shape: shape, std: std, mean: mean))
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
        return specs
    }
}
