import Foundation
import VitqData

/// The variants of the ViT family (the name reports and `vitq inspect` give).
public enum ViTVariant: String, Codable, Sendable {
    case vit = "ViT", deit = "DeiT", deitDistilled = "DeiT-distilled"
}

/// The architecture of a ViT/DeiT, as timm's `VisionTransformer` constructor arguments.
public struct ViTConfig: Codable, Equatable, Sendable {
    public var imgSize = 224
    public var patchSize = 16
    public var inChans = 3
    public var embedDim = 768
    public var depth = 12
    /// Attention heads. Shapes do not determine this; see ``ModelConfigResolver``.
    public var numHeads = 12
    /// The MLP hidden width (timm: embed_dim × mlp_ratio).
    public var mlpHidden = 3072
    public var numClasses = 1000
    public var qkvBias = true
    /// Distilled DeiT: a distillation token and a second head; logits are the mean of both.
    public var distilled = false
    public var layerNormEps: Float = 1e-6

    public init() {}

    public var numPatches: Int { (imgSize / patchSize) * (imgSize / patchSize) }
    /// Prefix tokens (class, plus distillation when distilled).
    public var prefixTokens: Int { distilled ? 2 : 1 }
    public var tokens: Int { numPatches + prefixTokens }
    public var headDim: Int { embedDim / numHeads }

    /// The linear ops' timm module names, in forward order.
    public var linearOpNames: [String] {
        ["patch_embed.proj"]
            + (0..<depth).flatMap { ["blocks.\($0).attn.qkv", "blocks.\($0).attn.proj", "blocks.\($0).mlp.fc1", "blocks.\($0).mlp.fc2"] }
            + ["head"] + (distilled ? ["head_dist"] : [])
    }
}

/// Everything needed to build and feed a model.
public struct ModelSpec: Codable, Equatable, Sendable {
    /// ViT, DeiT or distilled DeiT (stored under this key in a quantized file's `model` metadata).
    public var family: ViTVariant
    public var vit: ViTConfig
    public var preprocess: PreprocessConfig
    /// Where the architecture came from (for `vitq inspect`).
    public var configSource: String
    /// How the head count was decided.
    public var headsSource: String
}
