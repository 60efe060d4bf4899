import Foundation
import VitqData
import VitqFormats
import VitqTensor

/// timm's `VisionTransformer` and `VisionTransformerDistilled` (ViT, DeiT, distilled DeiT;
/// ``VisionTransformer``): dimensions from the tensor shapes, the rest from
/// ``ModelConfigResolver``. Its quantized files have no `architecture` key.
public struct ViTFamily: ModelFamily {
    public init() {}
    public var name: String { "vit" }
    public var architectureTag: String? { nil }

    /// A class token (timm's VisionTransformer always has one), under timm's name or in Hugging
    /// Face's layout (``HuggingFaceViT``).
    public func detects(_ file: TensorFile) -> Bool { file.tensors["cls_token"] != nil || HuggingFaceViT.prefix(of: file) != nil }

    public func load(file: TensorFile, overrides: ModelOverrides) throws -> any SearchableModel {
        if let p = HuggingFaceViT.prefix(of: file) {
            let timm = try HuggingFaceViT.timmView(file, prefix: p)
            return try VisionTransformer(file: timm, spec: try HuggingFaceViT.spec(file: file, timm: timm, overrides: overrides))
        }
        return try VisionTransformer(file: file, spec: try ModelConfigResolver.resolve(file: file, overrides: overrides))
    }

    /// A worker's load: the JOB's spec, and the file re-keyed when it is in Hugging Face's layout
    /// (the config.json beside the coordinator's file is already in the spec).
    public func load(file: TensorFile, spec: String, source: String) throws -> any SearchableModel {
        let tensors = try HuggingFaceViT.prefix(of: file).map { try HuggingFaceViT.timmView(file, prefix: $0) } ?? file
        return try VisionTransformer(file: tensors, spec: try decode(spec, source: source))
    }

    public func blueprint(spec text: String, source: String, file: TensorFile) throws -> ModelBlueprint {
        let spec = try decode(text, source: source)
        let c = spec.vit
        try c.checkSizes(source: source, fileBytes: file.byteCount, tensorCount: file.tensors.count)
        try spec.preprocess.validate(source: source, channels: c.inChans, imageSize: c.imgSize)
        let blocks = (0..<c.depth).map { (name: "blocks.\($0).attn", heads: c.numHeads) }
        return ModelBlueprint(linearOps: c.linearOpNames, attentionBlocks: blocks) { l, linear in
            try VisionTransformer(loader: l, spec: spec) { name, out, inF in
                try linear(LinearLayout(name: name, outFeatures: out, inFeatures: inF, weightShape: c.weightShape(name, out: out, in: inF),
                                        biasOptional: name.hasSuffix("attn.qkv") && !c.qkvBias))
            }
        }
    }

    public func summary(of model: any SearchableModel) -> ModelSummary {
        let spec = (model as! VisionTransformer).spec, c = spec.vit
        return ModelSummary(
            familyName: spec.family.rawValue, configSource: spec.configSource,
            dimensionsText: "embed \(c.embedDim), depth \(c.depth), heads \(c.numHeads) (head dim \(c.headDim)), mlp \(c.mlpHidden), patch \(c.patchSize), image \(c.imgSize), tokens \(c.tokens), classes \(c.numClasses)",
            dimensions: ["embed_dim": .int(c.embedDim), "depth": .int(c.depth), "num_heads": .int(c.numHeads), "head_dim": .int(c.headDim),
                         "mlp_hidden": .int(c.mlpHidden), "patch_size": .int(c.patchSize), "img_size": .int(c.imgSize),
                         "tokens": .int(c.tokens), "num_classes": .int(c.numClasses)],
            notes: [("heads from", spec.headsSource)])
    }

    /// `text` decoded and checked: dimensions that divide and tile.
    func decode(_ text: String, source: String) throws -> ModelSpec {
        let spec = try SpecJSON.decode(ModelSpec.self, from: text, source: source, family: "ViT")
        let c = spec.vit
        guard c.embedDim > 0, c.numHeads > 0, c.embedDim % c.numHeads == 0, c.depth > 0, c.patchSize > 0, c.imgSize % c.patchSize == 0 else {
            throw ModelError.badConfig(source: source, key: "vit", detail: "inconsistent dimensions")
        }
        return spec
    }
}

extension VisionTransformer: SearchableModel {
    public var family: any ModelFamily { ViTFamily() }
    public var imageSize: Int { config.imgSize }
    public var numClasses: Int { config.numClasses }
    public var preprocess: PreprocessConfig { spec.preprocess }
    public var familyName: String { spec.family.rawValue }

    public func attentionGeometry(_ block: String) -> AttentionGeometry? {
        let parts = block.split(separator: ".")
        guard parts.count == 3, parts[0] == "blocks", parts[2] == "attn", let i = Int(parts[1]), (0..<config.depth).contains(i) else { return nil }
        return AttentionGeometry(tokens: config.tokens, headDim: config.headDim, dim: config.embedDim, heads: config.numHeads, windows: 1)
    }

    public var attentionBlocks: [String] { (0..<config.depth).map { "blocks.\($0).attn" } }

    public func encodedSpec() throws -> String { try SpecJSON.encode(spec) }

    public func storedWeightShape(_ name: String, out: Int, in inF: Int) -> [Int] { config.weightShape(name, out: out, in: inF) }

    /// The class (and distillation) token, the position embedding, the norms and GELU
    /// smoothing's multipliers.
    public var floatTensors: [(key: String, tensor: Tensor)] {
        var t: [(key: String, tensor: Tensor)] = [("cls_token", clsToken)]
        func addNorm(_ p: String, _ n: LayerNorm) { t += [("\(p).weight", n.weight), ("\(p).bias", n.bias)] }
        if let d = distToken { t.append(("dist_token", d)) }
        t.append(("pos_embed", posEmbed))
        for (i, b) in blocks.enumerated() {
            addNorm("blocks.\(i).norm1", b.norm1); addNorm("blocks.\(i).norm2", b.norm2)
            if let m = b.hiddenMultiplier { t.append(("blocks.\(i).mlp.fc2.input_multiplier", m)) }
        }
        addNorm("norm", norm)
        return t
    }
}
