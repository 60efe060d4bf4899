import Foundation
import VitqFormats
import VitqTensor

/// One pre-norm transformer block: x += proj(attn(norm1(x))); x += fc2(gelu(fc1(norm2(x)))).
public struct ViTBlock: @unchecked Sendable {
    public let norm1: LayerNorm              // blocks.i.norm1
    public let qkv: any LinearOp             // blocks.i.attn.qkv, [3E, E], output laid out (3, heads, head_dim)
    public let attention: any AttentionKernel // softmax(q·kᵀ·scale)·v per head
    public let proj: any LinearOp            // blocks.i.attn.proj, [E, E]
    public let norm2: LayerNorm              // blocks.i.norm2
    public let fc1: any LinearOp             // blocks.i.mlp.fc1, [hidden, E]
    public let fc2: any LinearOp             // blocks.i.mlp.fc2, [E, hidden]
    /// Per-channel factors m_c applied to the GELU output before fc2 (GELU smoothing folds
    /// 1/m_c into fc2's weight columns); nil in a timm model.
    public let hiddenMultiplier: Tensor?     // blocks.i.mlp.fc2.input_multiplier, [hidden]

    public init(norm1: LayerNorm, qkv: any LinearOp, attention: any AttentionKernel, proj: any LinearOp,
                norm2: LayerNorm, fc1: any LinearOp, fc2: any LinearOp, hiddenMultiplier: Tensor? = nil) {
        self.norm1 = norm1; self.qkv = qkv; self.attention = attention; self.proj = proj
        self.norm2 = norm2; self.fc1 = fc1; self.fc2 = fc2; self.hiddenMultiplier = hiddenMultiplier
    }
}

extension ViTConfig {
    /// The stored shape of linear op `name`'s weight: the patch projection keeps its conv shape.
    public func weightShape(_ name: String, out: Int, in inF: Int) -> [Int] {
        name == "patch_embed.proj" ? [embedDim, inChans, patchSize, patchSize] : [out, inF]
    }
}

/// A timm VisionTransformer / VisionTransformerDistilled (ViT, DeiT).
///
/// The matrix products are ``LinearOp`` and ``AttentionKernel`` values: fp32 when loaded from a
/// float file, integer or fake-quantized when built by VitqQuant. LayerNorm, softmax, GELU and
/// the residual adds are always fp32.
public final class VisionTransformer: @unchecked Sendable {
    public let spec: ModelSpec
    public var config: ViTConfig { spec.vit }
    public let patchEmbed: any LinearOp  // patch_embed.proj as a GEMM: weight [E, C·P·P] in (c, ky, kx) order
    public let clsToken: Tensor          // cls_token [1, 1, E]
    public let distToken: Tensor?        // dist_token [1, 1, E] (distilled only)
    public let posEmbed: Tensor          // pos_embed [1, T, E]
    public let blocks: [ViTBlock]        // blocks.0 … blocks.(depth-1)
    public let norm: LayerNorm           // norm
    public let head: any LinearOp        // head [classes, E]
    public let headDist: (any LinearOp)? // head_dist [classes, E] (distilled only)
    /// Guards ``cachedWorkspace``.
    let workspaceLock = NSLock()
    /// The last forward pass's block scratch, reused by the next one of the same batch size.
    var cachedWorkspace: BlockWorkspace?

    /// A model from its parts.
    public init(spec: ModelSpec, patchEmbed: any LinearOp, clsToken: Tensor, distToken: Tensor?, posEmbed: Tensor,
                blocks: [ViTBlock], norm: LayerNorm, head: any LinearOp, headDist: (any LinearOp)?) {
        self.spec = spec; self.patchEmbed = patchEmbed; self.clsToken = clsToken; self.distToken = distToken
        self.posEmbed = posEmbed; self.blocks = blocks; self.norm = norm; self.head = head; self.headDist = headDist
    }

    /// Loads the model in `file`, strictly: every key must be present with its shape, and no other.
    public convenience init(file: TensorFile, spec: ModelSpec) throws {
        let l = StrictTensorLoader(file), c = spec.vit
        try self.init(loader: l, spec: spec) { name, out, inF in
            let w = try l.load("\(name).weight", c.weightShape(name, out: out, in: inF))
            let bias = name.hasSuffix("attn.qkv") && !c.qkvBias ? try l.loadIfPresent("\(name).bias", [out]) : try l.load("\(name).bias", [out])
            return Linear(weight: Tensor(shape: [out, inF], values: w.array), bias: bias)
        }
        try l.finish()
    }

    /// Loads the float tensors (class and distillation tokens, position embedding, norms and
    /// GELU smoothing's optional `blocks.i.mlp.fc2.input_multiplier`) from `l` and each linear op
    /// from `linear(name, out, in)`; the caller finishes the loader.
    public init(loader l: StrictTensorLoader, spec: ModelSpec, linear: (String, Int, Int) throws -> any LinearOp) throws {
        self.spec = spec
        let c = spec.vit, e = c.embedDim, eps = c.layerNormEps
        try c.checkSizes(source: l.file.path, fileBytes: l.file.byteCount, tensorCount: l.file.tensors.count)
        patchEmbed = try linear("patch_embed.proj", e, c.inChans * c.patchSize * c.patchSize)
        clsToken = try l.load("cls_token", [1, 1, e])
        distToken = c.distilled ? try l.load("dist_token", [1, 1, e]) : nil
        posEmbed = try l.load("pos_embed", [1, c.tokens, e])
        blocks = try (0..<c.depth).map { i in
            let p = "blocks.\(i)"
            return ViTBlock(
                norm1: try LayerNorm(l, "\(p).norm1", dim: e, eps: eps),
                qkv: try linear("\(p).attn.qkv", 3 * e, e),
                attention: FloatAttention(),
                proj: try linear("\(p).attn.proj", e, e),
                norm2: try LayerNorm(l, "\(p).norm2", dim: e, eps: eps),
                fc1: try linear("\(p).mlp.fc1", c.mlpHidden, e),
                fc2: try linear("\(p).mlp.fc2", e, c.mlpHidden),
                hiddenMultiplier: try Self.hiddenMultiplier(l, "\(p).mlp.fc2.input_multiplier", c.mlpHidden))
        }
        norm = try LayerNorm(l, "norm", dim: e, eps: eps)
        head = try linear("head", c.numClasses, e)
        headDist = c.distilled ? try linear("head_dist", c.numClasses, e) : nil
    }

    /// GELU smoothing's optional per-channel multiplier `name` [hidden]: finite and positive.
    static func hiddenMultiplier(_ l: StrictTensorLoader, _ name: String, _ hidden: Int) throws -> Tensor? {
        guard let m = try l.loadIfPresent(name, [hidden]) else { return nil }
        if let bad = (0..<hidden).first(where: { !(m.data[$0].isFinite && m.data[$0] > 0) }) {
            throw FormatError.badTensor(path: l.file.path, key: name, detail: "value \(m.data[bad]) at \(bad) is not a finite positive multiplier")
        }
        return m
    }

    /// Opens `path`, resolves its config and loads it.
    public convenience init(path: String, overrides: ModelOverrides = ModelOverrides()) throws {
        let file = try TensorFile.open(path: path)
        try self.init(file: file, spec: try ModelConfigResolver.resolve(file: file, overrides: overrides))
    }

    /// Number of parameters.
    public var parameterCount: Int {
        var n = clsToken.count + (distToken?.count ?? 0) + posEmbed.count + 2 * norm.weight.count
        for b in blocks { n += 2 * (b.norm1.weight.count + b.norm2.weight.count) }
        return linearOps.reduce(n) { $0 + $1.op.parameterCount }
    }

    /// Every linear op with its timm module name (``ViTConfig/linearOpNames``), in forward order.
    public var linearOps: [(name: String, op: any LinearOp)] {
        var ops: [any LinearOp] = [patchEmbed]
        for b in blocks { ops += [b.qkv, b.proj, b.fc1, b.fc2] }
        ops.append(head)
        if let h = headDist { ops.append(h) }
        return Array(zip(config.linearOpNames, ops)).map { (name: $0.0, op: $0.1) }
    }

    /// This model with its products replaced: `linear(name, op)` for each linear op and
    /// `attention(name, kernel)` for each block's attention (`blocks.i.attn`).
    public func replacing(linear: (String, any LinearOp) -> any LinearOp,
                          attention: (String, any AttentionKernel) -> any AttentionKernel) -> VisionTransformer {
        let newBlocks = blocks.enumerated().map { i, b in
            let p = "blocks.\(i)"
            return ViTBlock(norm1: b.norm1, qkv: linear("\(p).attn.qkv", b.qkv), attention: attention("\(p).attn", b.attention),
                            proj: linear("\(p).attn.proj", b.proj), norm2: b.norm2,
                            fc1: linear("\(p).mlp.fc1", b.fc1), fc2: linear("\(p).mlp.fc2", b.fc2),
                            hiddenMultiplier: b.hiddenMultiplier)
        }
        return VisionTransformer(spec: spec, patchEmbed: linear("patch_embed.proj", patchEmbed), clsToken: clsToken,
                                 distToken: distToken, posEmbed: posEmbed, blocks: newBlocks, norm: norm,
                                 head: linear("head", head), headDist: headDist.map { linear("head_dist", $0) })
    }
}
