import VitqModels
import VitqTensor

/// How a quantized network is executed.
public enum EngineMode: String, Sendable {
    /// Integer GEMMs for every quantized product (the deployable engine).
    case integer
    /// The same quantizers applied in float with sgemm (the reference for the engine).
    case fakeQuant = "fake-quant"
}

/// A linear op of a quantized network: left in float, or an int8 weight with its input quantizer.
public enum LinearSlot: @unchecked Sendable {
    case float(Linear)
    case quantized(QuantizedWeight, input: OperandQuant)
}

/// A ViT/DeiT with its quantization decided: the float parts (tokens, position embedding,
/// LayerNorms), every linear op as a ``LinearSlot`` and each block's ``AttentionQuant`` (nil
/// when that block's attention stays in float). This is what a quantized file stores, and
/// ``makeModel(_:)`` turns it into a runnable ``VisionTransformer``.
public final class QuantizedNetwork: @unchecked Sendable {
    public let spec: ModelSpec
    public let clsToken: Tensor
    public let distToken: Tensor?
    public let posEmbed: Tensor
    public let norms: [(norm1: LayerNorm, norm2: LayerNorm)]
    /// Each block's ``ViTBlock/hiddenMultiplier`` (GELU smoothing), nil where there is none.
    public let hiddenMultipliers: [Tensor?]
    public let norm: LayerNorm
    /// Linear ops by timm module name (``VisionTransformer/linearOps`` names).
    public let linear: [String: LinearSlot]
    public let attention: [AttentionQuant?]

    public init(spec: ModelSpec, clsToken: Tensor, distToken: Tensor?, posEmbed: Tensor,
                norms: [(norm1: LayerNorm, norm2: LayerNorm)], hiddenMultipliers: [Tensor?]? = nil, norm: LayerNorm,
                linear: [String: LinearSlot], attention: [AttentionQuant?]) {
        self.spec = spec; self.clsToken = clsToken; self.distToken = distToken; self.posEmbed = posEmbed
        self.norms = norms; self.norm = norm; self.linear = linear; self.attention = attention
        self.hiddenMultipliers = hiddenMultipliers ?? Array(repeating: nil, count: norms.count)
    }

    /// Quantizes the float model `vit`: `linear[name]` gives each quantized op's weight and
    /// input quantizers (absent: stays float), `attention[i]` block i's attention quantizers.
    /// `biases[name]` replaces a quantized op's float bias (bias correction).
    public convenience init(float vit: VisionTransformer, weights: [String: TensorQuant], inputs: [String: OperandQuant],
                            attention: [AttentionQuant?], biases: [String: [Float]] = [:]) {
        var slots: [String: LinearSlot] = [:]
        for (name, op) in vit.linearOps {
            slots[name] = LinearSlot.make(op as! Linear, weight: weights[name], input: inputs[name], bias: biases[name])
        }
        self.init(spec: vit.spec, clsToken: vit.clsToken, distToken: vit.distToken, posEmbed: vit.posEmbed,
                  norms: vit.blocks.map { ($0.norm1, $0.norm2) }, hiddenMultipliers: vit.blocks.map(\.hiddenMultiplier),
                  norm: vit.norm, linear: slots, attention: attention)
    }

    /// The runnable model in `mode`.
    public func makeModel(_ mode: EngineMode) -> VisionTransformer {
        func op(_ name: String) -> any LinearOp { linear[name]!.op(mode) }
        func attn(_ i: Int) -> any AttentionKernel { attention[i]?.kernel(mode) ?? FloatAttention() }
        let blocks = (0..<spec.vit.depth).map { i in
            ViTBlock(norm1: norms[i].norm1, qkv: op("blocks.\(i).attn.qkv"), attention: attn(i), proj: op("blocks.\(i).attn.proj"),
                     norm2: norms[i].norm2, fc1: op("blocks.\(i).mlp.fc1"), fc2: op("blocks.\(i).mlp.fc2"),
                     hiddenMultiplier: hiddenMultipliers[i])
        }
        return VisionTransformer(spec: spec, patchEmbed: op("patch_embed.proj"), clsToken: clsToken, distToken: distToken,
                                 posEmbed: posEmbed, blocks: blocks, norm: norm, head: op("head"),
                                 headDist: spec.vit.distilled ? op("head_dist") : nil)
    }
}
