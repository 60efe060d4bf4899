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

    // What a quantized file and a JOB need of a model (``ModelFamily``).

    /// The family the model belongs to.
    var family: any ModelFamily { get }
    /// The model's resolved spec as its family encodes it (canonical JSON): a quantized file's
    /// `model` metadata and a JOB's model spec.
    func encodedSpec() throws -> String
    /// Every attention block (the `….attn` prefix of ``attentionGeometry(_:)``), in forward order.
    var attentionBlocks: [String] { get }
    /// The stored tensors other than the linear ops' (tokens, norms, bias tables, multipliers),
    /// by checkpoint key: what a quantized file keeps in float beside its linear and attention entries.
    var floatTensors: [(key: String, tensor: Tensor)] { get }
    /// The stored shape of linear op `name`'s weight ([out, in], or the checkpoint's conv shape).
    func storedWeightShape(_ name: String, out: Int, in: Int) -> [Int]
    /// The same model with each linear op replaced by `linear(name, op)` and each attention
    /// block's kernel by `attention(block, kernel)`.
    func replacing(linear: (String, any LinearOp) -> any LinearOp,
                   attention: (String, any AttentionKernel) -> any AttentionKernel) -> Self
}
