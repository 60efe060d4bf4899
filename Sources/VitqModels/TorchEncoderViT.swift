import Foundation
import VitqData
import VitqFormats
import VitqTensor

/// The resolved spec of a ``TorchEncoderViT``: every dimension, the LayerNorm eps and the
/// preprocessing (its canonical JSON is the model's encoded spec).
public struct TorchViTSpec: Codable, Equatable, Sendable {
    public var embedDim: Int, depth: Int, numHeads: Int, mlpHidden: Int
    public var patchSize: Int, imgSize: Int, inChans: Int, numClasses: Int
    public var layerNormEps: Float
    public var preprocess: PreprocessConfig
    /// Where the heads and the preprocessing came from.
    public var configSource: String

    public init(embedDim: Int, depth: Int, numHeads: Int, mlpHidden: Int, patchSize: Int, imgSize: Int, inChans: Int,
                numClasses: Int, layerNormEps: Float, preprocess: PreprocessConfig, configSource: String) {
        self.embedDim = embedDim; self.depth = depth; self.numHeads = numHeads; self.mlpHidden = mlpHidden
        self.patchSize = patchSize; self.imgSize = imgSize; self.inChans = inChans; self.numClasses = numClasses
        self.layerNormEps = layerNormEps; self.preprocess = preprocess; self.configSource = configSource
    }

    public var headDim: Int { embedDim / numHeads }
    public var numPatches: Int { (imgSize / patchSize) * (imgSize / patchSize) }
    /// The class token plus the patches.
    public var tokens: Int { numPatches + 1 }

    /// Linear op names (timm convention), in forward order.
    public var linearOpNames: [String] {
        ["patch_embed.proj"] + (0..<depth).flatMap { i in ["attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2"].map { "blocks.\(i).\($0)" } } + ["head"]
    }

    /// The checkpoint keys of linear op `name`'s weight and bias.
    public func checkpointKeys(_ name: String) -> (weight: String, bias: String) {
        let parts = name.split(separator: ".").map(String.init)
        if parts.count == 4, parts[0] == "blocks" {
            let l = "transformer.layers.\(parts[1])"
            switch (parts[2], parts[3]) {
            case ("attn", "qkv"): return ("\(l).self_attn.in_proj_weight", "\(l).self_attn.in_proj_bias")
            case ("attn", "proj"): return ("\(l).self_attn.out_proj.weight", "\(l).self_attn.out_proj.bias")
            case ("mlp", "fc1"): return ("\(l).linear1.weight", "\(l).linear1.bias")
            default: return ("\(l).linear2.weight", "\(l).linear2.bias")
            }
        }
        if name == "head" { return ("mlp_head.1.weight", "mlp_head.1.bias") }
        return ("\(name).weight", "\(name).bias")
    }

    /// The stored shape of linear op `name`'s weight: the patch projection keeps its conv shape.
    public func weightShape(_ name: String, out: Int, in inF: Int) -> [Int] {
        name == "patch_embed.proj" ? [embedDim, inChans, patchSize, patchSize] : [out, inF]
    }
}

/// One `torch.nn.TransformerEncoderLayer` (post-norm, ReLU):
/// x = norm1(x + out_proj(attn(x))); x = norm2(x + linear2(relu(linear1(x)))).
public struct TorchEncoderBlock: @unchecked Sendable {
    public let qkv: any LinearOp             // blocks.i.attn.qkv ↔ self_attn.in_proj_*, [3E, E] (q; k; v rows)
    public let attention: any AttentionKernel
    public let proj: any LinearOp            // blocks.i.attn.proj ↔ self_attn.out_proj
    public let norm1: LayerNorm              // transformer.layers.i.norm1
    public let fc1: any LinearOp             // blocks.i.mlp.fc1 ↔ linear1
    public let fc2: any LinearOp             // blocks.i.mlp.fc2 ↔ linear2
    public let norm2: LayerNorm              // transformer.layers.i.norm2

    public init(qkv: any LinearOp, attention: any AttentionKernel, proj: any LinearOp, norm1: LayerNorm,
                fc1: any LinearOp, fc2: any LinearOp, norm2: LayerNorm) {
        self.qkv = qkv; self.attention = attention; self.proj = proj; self.norm1 = norm1
        self.fc1 = fc1; self.fc2 = fc2; self.norm2 = norm2
    }
}

/// A ViT built from `torch.nn.TransformerEncoderLayer` blocks (e.g. the CIFAR-10 ViT of
/// SOURCES.md §3): patch conv, class token first, position embedding added after the concat,
/// post-norm blocks with ReLU, then LayerNorm (`mlp_head.0`) and Linear (`mlp_head.1`) on the
/// class token. Ops carry timm names; the checkpoint keys are PyTorch's.
public final class TorchEncoderViT: @unchecked Sendable {
    public let spec: TorchViTSpec
    public let patchEmbed: any LinearOp  // patch_embed.proj as a GEMM [E, C·P·P]
    public let clsToken: Tensor          // cls_token [1, 1, E]
    public let posEmbed: Tensor          // pos_embed [1, T, E]
    public let blocks: [TorchEncoderBlock]
    public let headNorm: LayerNorm       // mlp_head.0
    public let head: any LinearOp        // head ↔ mlp_head.1

    public init(spec: TorchViTSpec, patchEmbed: any LinearOp, clsToken: Tensor, posEmbed: Tensor,
                blocks: [TorchEncoderBlock], headNorm: LayerNorm, head: any LinearOp) {
        self.spec = spec; self.patchEmbed = patchEmbed; self.clsToken = clsToken; self.posEmbed = posEmbed
        self.blocks = blocks; self.headNorm = headNorm; self.head = head
    }

    /// Loads the model in `file` strictly: every key present with its shape, and no other.
    public convenience init(file: TensorFile, spec: TorchViTSpec) throws {
        let l = StrictTensorLoader(file)
        try self.init(loader: l, spec: spec) { name, out, inF in
            let k = spec.checkpointKeys(name)
            let w = try l.load(k.weight, spec.weightShape(name, out: out, in: inF))
            return Linear(weight: Tensor(shape: [out, inF], values: w.array), bias: try l.load(k.bias, [out]))
        }
        try l.finish()
    }

    /// Loads the float tensors from `l` and each linear op from `linear(name, out, in)`; the caller finishes the loader.
    public init(loader l: StrictTensorLoader, spec: TorchViTSpec, linear: (String, Int, Int) throws -> any LinearOp) throws {
        self.spec = spec
        let e = spec.embedDim, eps = spec.layerNormEps
        patchEmbed = try linear("patch_embed.proj", e, spec.inChans * spec.patchSize * spec.patchSize)
        clsToken = try l.load("cls_token", [1, 1, e])
        posEmbed = try l.load("pos_embed", [1, spec.tokens, e])
        blocks = try (0..<spec.depth).map { i in
            let p = "blocks.\(i)", k = "transformer.layers.\(i)"
            return TorchEncoderBlock(
                qkv: try linear("\(p).attn.qkv", 3 * e, e), attention: FloatAttention(),
                proj: try linear("\(p).attn.proj", e, e),
                norm1: try LayerNorm(l, "\(k).norm1", dim: e, eps: eps),
                fc1: try linear("\(p).mlp.fc1", spec.mlpHidden, e),
                fc2: try linear("\(p).mlp.fc2", e, spec.mlpHidden),
                norm2: try LayerNorm(l, "\(k).norm2", dim: e, eps: eps))
        }
        headNorm = try LayerNorm(l, "mlp_head.0", dim: e, eps: eps)
        head = try linear("head", spec.numClasses, e)
    }

    /// Every linear op with its timm name, in forward order.
    public var linearOps: [(name: String, op: any LinearOp)] {
        var ops: [any LinearOp] = [patchEmbed]
        for b in blocks { ops += [b.qkv, b.proj, b.fc1, b.fc2] }
        ops.append(head)
        return Array(zip(spec.linearOpNames, ops)).map { (name: $0.0, op: $0.1) }
    }

    /// Number of parameters.
    public var parameterCount: Int {
        let e = spec.embedDim
        return linearOps.reduce(clsToken.count + posEmbed.count + 2 * e * (2 * blocks.count + 1)) { $0 + $1.op.parameterCount }
    }

    /// This model with its linear ops and attention kernels replaced.
    public func replacing(linear: (String, any LinearOp) -> any LinearOp,
                          attention: (String, any AttentionKernel) -> any AttentionKernel) -> TorchEncoderViT {
        let nb = blocks.enumerated().map { i, b in
            let p = "blocks.\(i)"
            return TorchEncoderBlock(qkv: linear("\(p).attn.qkv", b.qkv), attention: attention("\(p).attn", b.attention),
                                     proj: linear("\(p).attn.proj", b.proj), norm1: b.norm1,
                                     fc1: linear("\(p).mlp.fc1", b.fc1), fc2: linear("\(p).mlp.fc2", b.fc2), norm2: b.norm2)
        }
        return TorchEncoderViT(spec: spec, patchEmbed: linear("patch_embed.proj", patchEmbed), clsToken: clsToken,
                               posEmbed: posEmbed, blocks: nb, headNorm: headNorm, head: linear("head", head))
    }
}
