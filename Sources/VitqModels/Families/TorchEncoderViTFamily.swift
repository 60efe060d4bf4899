import Foundation
import VitqData
import VitqFormats
import VitqTensor

/// ViTs built from `torch.nn.TransformerEncoderLayer` blocks (``TorchEncoderViT``), detected by
/// `transformer.layers.0.self_attn.in_proj_weight`. Dimensions come from the shapes; the heads
/// and the preprocessing from the overrides, else the JSON beside the model (`num_heads` in
/// `config`, `mean`, `std`, `crop_pct`), else the known checkpoints by sha256; else a refusal.
public struct TorchEncoderViTFamily: ModelFamily {
    public init() {}
    public var name: String { "torch-vit" }
    public var architectureTag: String? { "torch-vit" }

    public func detects(_ file: TensorFile) -> Bool { file.tensors["transformer.layers.0.self_attn.in_proj_weight"] != nil }

    /// Known checkpoints by sha256: heads and preprocessing.
    static let known: [String: (heads: Int, mean: [Float], std: [Float], cropPct: Double)] = [
        "2d061eb158b8ea126c1b96ee657862bf2217696ed40fff3bdc424007d13f1397":
            (8, [0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.2010], 1.0),
    ]

    public func load(file: TensorFile, overrides: ModelOverrides) throws -> any SearchableModel {
        try TorchEncoderViT(file: file, spec: try resolve(file: file, overrides: overrides))
    }

    public func load(file: TensorFile, spec: String, source: String) throws -> any SearchableModel {
        try TorchEncoderViT(file: file, spec: try decode(spec, source: source))
    }

    public func blueprint(spec text: String, source: String, file: TensorFile) throws -> ModelBlueprint {
        let spec = try decode(text, source: source)
        try spec.preprocess.validate(source: source, channels: spec.inChans, imageSize: spec.imgSize)
        let blocks = (0..<spec.depth).map { (name: "blocks.\($0).attn", heads: spec.numHeads) }
        return ModelBlueprint(linearOps: spec.linearOpNames, attentionBlocks: blocks) { l, linear in
            try TorchEncoderViT(loader: l, spec: spec) { name, out, inF in
                try linear(LinearLayout(name: name, outFeatures: out, inFeatures: inF,
                                        weightShape: spec.weightShape(name, out: out, in: inF), biasOptional: false))
            }
        }
    }

    public func summary(of model: any SearchableModel) -> ModelSummary {
        guard let m = model as? TorchEncoderViT else {
            return ModelSummary(familyName: "torch-vit", configSource: nil, dimensionsText: "", dimensions: [:])
        }
        let s = m.spec
        return ModelSummary(
            familyName: "torch-vit", configSource: s.configSource,
            dimensionsText: "embed \(s.embedDim), depth \(s.depth), heads \(s.numHeads) (head dim \(s.headDim)), ffn \(s.mlpHidden), patch \(s.patchSize), image \(s.imgSize), tokens \(s.tokens), classes \(s.numClasses)",
            dimensions: ["embed_dim": .int(s.embedDim), "depth": .int(s.depth), "num_heads": .int(s.numHeads), "head_dim": .int(s.headDim),
                         "mlp_hidden": .int(s.mlpHidden), "patch_size": .int(s.patchSize), "img_size": .int(s.imgSize),
                         "tokens": .int(s.tokens), "num_classes": .int(s.numClasses)],
            notes: [("config from", s.configSource)])
    }

    /// The spec of `file`: dimensions from its shapes, the rest as the type's doc says.
    public func resolve(file: TensorFile, overrides: ModelOverrides) throws -> TorchViTSpec {
        let path = file.path
        func shape(_ k: String, rank: Int) throws -> [Int] {
            guard let t = file.tensors[k] else { throw ModelError.missingKey(path: path, key: k) }
            guard t.shape.count == rank, t.shape.allSatisfy({ $0 > 0 }) else {
                throw ModelError.badConfig(source: path, key: k, detail: "shape \(t.shape) is not a positive rank-\(rank) shape")
            }
            return t.shape
        }
        let cls = try shape("cls_token", rank: 3), pos = try shape("pos_embed", rank: 3)
        let pw = try shape("patch_embed.proj.weight", rank: 4), l1 = try shape("transformer.layers.0.linear1.weight", rank: 2)
        let hw = try shape("mlp_head.1.weight", rank: 2)
        var depth = 0
        while depth < 10_000, file.tensors["transformer.layers.\(depth).self_attn.in_proj_weight"] != nil { depth += 1 }
        let e = cls[2], patch = pw[2], grid = Int(Double(pos[1] - 1).squareRoot())
        guard grid * grid == pos[1] - 1, grid <= 4096, patch <= 4096, pw[3] == patch else {
            throw ModelError.badConfig(source: path, key: "pos_embed", detail: "\(pos[1]) tokens are not a class token plus a square patch grid")
        }
        var heads = overrides.numHeads, mean = overrides.mean, std = overrides.std, crop = overrides.cropPct
        var from: [String] = []
        if heads != nil || mean != nil { from.append("command line") }
        if heads == nil || mean == nil || std == nil, let side = try ConfigSource.read(file) {
            if heads == nil, let h = side.config?["num_heads"] {
                guard let hi = h as? Int else { throw ModelError.badConfig(source: side.name, key: "config.num_heads", detail: "not an integer") }
                heads = hi
            }
            mean = mean ?? side.mean; std = std ?? side.std; crop = crop ?? side.cropPct
            from.append(side.name)
        }
        if heads == nil || mean == nil || std == nil {
            guard let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .mappedIfSafe) else {
                throw ModelError.badConfig(source: path, key: "(file)", detail: "cannot read to identify the checkpoint")
            }
            var h = SHA256(); h.update(data)
            if let k = Self.known[h.finalizeHex()] {
                heads = heads ?? k.heads; mean = mean ?? k.mean; std = std ?? k.std; crop = crop ?? k.cropPct
                from.append("known checkpoint (sha256)")
            }
        }
        guard let heads, let mean, let std else {
            throw ModelError.badConfig(source: path, key: heads == nil ? "num_heads" : "mean/std",
                                       detail: "no shape tells it; give --heads/--mean/--std or a JSON beside the model")
        }
        var pre = PreprocessConfig()
        pre.inputSize = grid * patch; pre.mean = mean; pre.std = std; pre.cropPct = crop ?? 1.0
        let spec = TorchViTSpec(embedDim: e, depth: depth, numHeads: heads, mlpHidden: l1[0], patchSize: patch, imgSize: grid * patch,
                                inChans: pw[1], numClasses: hw[0], layerNormEps: 1e-5, preprocess: pre,
                                configSource: from.joined(separator: ", "))
        return try check(spec, source: path)
    }

    func decode(_ text: String, source: String) throws -> TorchViTSpec {
        try check(try SpecJSON.decode(TorchViTSpec.self, from: text, source: source, family: "torch-vit"), source: source)
    }

    /// Dimensions that divide, tile and stay small enough to allocate.
    func check(_ s: TorchViTSpec, source: String) throws -> TorchViTSpec {
        guard s.embedDim > 0, s.embedDim <= 65_536, s.numHeads > 0, s.embedDim % s.numHeads == 0, s.depth > 0, s.depth <= 1024,
              s.patchSize > 0, s.imgSize > 0, s.imgSize <= 4096, s.imgSize % s.patchSize == 0, s.mlpHidden > 0, s.mlpHidden <= 262_144,
              s.numClasses > 0, s.numClasses <= 1_000_000, s.inChans > 0, s.layerNormEps.isFinite, s.layerNormEps > 0 else {
            throw ModelError.badConfig(source: source, key: "torch-vit", detail: "inconsistent dimensions")
        }
        try s.preprocess.validate(source: source, channels: s.inChans, imageSize: s.imgSize)
        return s
    }
}

extension TorchEncoderViT: SearchableModel {
    public var family: any ModelFamily { TorchEncoderViTFamily() }
    public var imageSize: Int { spec.imgSize }
    public var numClasses: Int { spec.numClasses }
    public var preprocess: PreprocessConfig { spec.preprocess }
    public var familyName: String { "torch-vit" }

    public func attentionGeometry(_ block: String) -> AttentionGeometry? {
        let parts = block.split(separator: ".")
        guard parts.count == 3, parts[0] == "blocks", parts[2] == "attn", let i = Int(parts[1]), (0..<spec.depth).contains(i) else { return nil }
        return AttentionGeometry(tokens: spec.tokens, headDim: spec.headDim, dim: spec.embedDim, heads: spec.numHeads, windows: 1)
    }

    public var attentionBlocks: [String] { (0..<spec.depth).map { "blocks.\($0).attn" } }
    public func encodedSpec() throws -> String { try SpecJSON.encode(spec) }
    public func storedWeightShape(_ name: String, out: Int, in inF: Int) -> [Int] { spec.weightShape(name, out: out, in: inF) }

    /// The class token, the position embedding and the norms, by checkpoint key.
    public var floatTensors: [(key: String, tensor: Tensor)] {
        var t: [(key: String, tensor: Tensor)] = [("cls_token", clsToken), ("pos_embed", posEmbed)]
        func addNorm(_ p: String, _ n: LayerNorm) { t += [("\(p).weight", n.weight), ("\(p).bias", n.bias)] }
        for (i, b) in blocks.enumerated() {
            addNorm("transformer.layers.\(i).norm1", b.norm1); addNorm("transformer.layers.\(i).norm2", b.norm2)
        }
        addNorm("mlp_head.0", headNorm)
        return t
    }
}
