import VitqData
import VitqTensor

/// A float or quantized image classifier vitq can run and evaluate (ViT/DeiT and Swin).
public protocol ImageClassifier: AnyObject, Sendable {
    /// Side of the square network input.
    var imageSize: Int { get }
    var numClasses: Int { get }
    /// The eval transform the model expects.
    var preprocess: PreprocessConfig { get }
    /// The model family, for reports ("ViT", "DeiT", "Swin", …).
    var familyName: String { get }
    /// Weights, biases and the other stored parameters.
    var parameterCount: Int { get }
    /// Logits [B, classes] for normalised images [B, C, H, W]; the observer sees the named taps.
    func forward(_ images: Tensor, observer: ForwardObserver?) -> Tensor
}

/// The shape of one block's attention as the scale search sees it: each image holds `windows`
/// attention units (1 for ViT, Swin's windows), each of `tokens` tokens and `heads` heads of
/// `headDim`; q, k and v sit in rows of 3·`dim` (unit-major, as the qkv tap lays them out).
public struct AttentionGeometry: Equatable, Sendable {
    public var tokens: Int, headDim: Int, dim: Int, heads: Int, windows: Int
    public init(tokens: Int, headDim: Int, dim: Int, heads: Int, windows: Int) {
        self.tokens = tokens; self.headDim = headDim; self.dim = dim; self.heads = heads; self.windows = windows
    }
}

/// What the scale search (stage 1 and the candidate scoring) needs of a float model.
///
/// Stage-1 taps follow one convention: `<op>.input` and `<op>` (its output) for every linear op
/// named as in ``linearOps``, `<op>.grad` from ``forwardBackward``; per attention block `B`
/// (`….attn`): `B.qkv`, `B.softmax`, `B.matmul1` and `B.matmul2` (head-major) with their
/// gradients. The patch projection's output gradient is `patch_embed.grad`.
public protocol SearchableModel: ImageClassifier {
    /// Every linear op with its timm name, in forward order.
    var linearOps: [(name: String, op: any LinearOp)] { get }
    /// The attention geometry of block `block` (the `….attn` prefix), nil if there is none.
    func attentionGeometry(_ block: String) -> AttentionGeometry?
    /// The logits of `images`; with an observer, also the stage-1 taps and the gradient taps of `loss`.
    func forwardBackward(_ images: Tensor, loss: TaskLoss, firstImageIndex: Int, observer: ForwardObserver?) -> Tensor
}

extension VisionTransformer: SearchableModel {
    public var imageSize: Int { config.imgSize }
    public var numClasses: Int { config.numClasses }
    public var preprocess: PreprocessConfig { spec.preprocess }
    public var familyName: String { spec.family.rawValue }

    public func attentionGeometry(_ block: String) -> AttentionGeometry? {
        let parts = block.split(separator: ".")
        guard parts.count == 3, parts[0] == "blocks", parts[2] == "attn", let i = Int(parts[1]), (0..<config.depth).contains(i) else { return nil }
        return AttentionGeometry(tokens: config.tokens, headDim: config.headDim, dim: config.embedDim, heads: config.numHeads, windows: 1)
    }
}

extension SwinTransformer: SearchableModel {
    public var imageSize: Int { config.imgSize }
    public var numClasses: Int { config.numClasses }
    public var familyName: String { "Swin" }
    public var parameterCount: Int {
        func n(_ l: LayerNorm) -> Int { l.weight.count + l.bias.count }
        var total = linearOps.reduce(0) { $0 + $1.op.parameterCount } + n(patchNorm) + n(norm)
        for m in merges { if let m { total += n(m.norm) } }
        for blk in stages.joined() { total += n(blk.norm1) + n(blk.norm2) + blk.relativePositionBias.count }
        return total
    }

    public func attentionGeometry(_ block: String) -> AttentionGeometry? {
        let parts = block.split(separator: ".")
        guard parts.count == 5, parts[0] == "layers", parts[2] == "blocks", parts[4] == "attn",
              let s = Int(parts[1]), let b = Int(parts[3]), (0..<config.stages).contains(s), (0..<config.depths[s]).contains(b) else { return nil }
        let w = config.window(s), side = config.resolution(s) / w, d = config.dim(s), heads = config.numHeads[s]
        return AttentionGeometry(tokens: w * w, headDim: d / heads, dim: d, heads: heads, windows: side * side)
    }
}
