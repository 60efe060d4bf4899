import Foundation
import VitqData
import VitqFormats
import VitqTensor

/// A Swin's resolved spec: what a quantized Swin file's `model` metadata and a Swin JOB hold.
public struct SwinSpec: Codable, Equatable, Sendable {
    public var swin: SwinConfig
    public var preprocess: PreprocessConfig
    public init(swin: SwinConfig, preprocess: PreprocessConfig) { self.swin = swin; self.preprocess = preprocess }
}

/// timm's `SwinTransformer` (``SwinTransformer``). Its files carry their config (timm_config
/// metadata or the JSON beside them; ``ConfigSource``); its quantized files say
/// `architecture: swin`.
public struct SwinFamily: ModelFamily {
    public init() {}
    public var name: String { "swin" }
    public var architectureTag: String? { "swin" }

    /// A timm_class of SwinTransformer, or Swin's relative position bias tables.
    public func detects(_ file: TensorFile) -> Bool {
        file.metadata["timm_class"] == "SwinTransformer" || file.tensors["layers.0.blocks.0.attn.relative_position_bias_table"] != nil
    }

    public func load(file: TensorFile, overrides: ModelOverrides) throws -> any SearchableModel {
        if overrides.arch != nil || overrides.numHeads != nil {
            throw ModelError.badConfig(source: file.path, key: "--arch/--heads", detail: "a Swin file's architecture comes from its config")
        }
        var (config, pre) = try Self.resolve(file)
        if let m = overrides.mean { pre.mean = m }
        if let s = overrides.std { pre.std = s }
        if let c = overrides.cropPct { pre.cropPct = c }
        return try SwinTransformer(file: file, config: config, preprocess: pre)
    }

    public func load(file: TensorFile, spec: String, source: String) throws -> any SearchableModel {
        let s = try decode(spec, source: source)
        return try SwinTransformer(file: file, config: s.swin, preprocess: s.preprocess)
    }

    public func blueprint(spec: String, source: String, file: TensorFile) throws -> ModelBlueprint {
        let s = try decode(spec, source: source)
        let c = s.swin
        try c.checkSizes(source: source, fileBytes: file.byteCount, tensorCount: file.tensors.count)
        let blocks = c.attentionBlocks
        return ModelBlueprint(linearOps: c.linearOpNames, attentionBlocks: blocks.map { ($0.name, c.numHeads[$0.stage]) }) { l, linear in
            try SwinTransformer(loader: l, config: c, preprocess: s.preprocess) { name, out, inF in
                try linear(LinearLayout(name: name, outFeatures: out, inFeatures: inF, weightShape: c.weightShape(name, out: out, in: inF),
                                        biasOptional: name.hasSuffix("downsample.reduction")))
            }
        }
    }

    public func summary(of model: any SearchableModel) -> ModelSummary {
        let c = (model as! SwinTransformer).config
        return ModelSummary(
            familyName: "Swin", configSource: nil,
            dimensionsText: "embed \(c.embedDim), depths \(c.depths), heads \(c.numHeads), window \(c.windowSize), patch \(c.patchSize), image \(c.imgSize), classes \(c.numClasses)",
            dimensions: ["embed_dim": .int(c.embedDim), "depths": .ints(c.depths), "num_heads": .ints(c.numHeads), "window_size": .int(c.windowSize),
                         "patch_size": .int(c.patchSize), "img_size": .int(c.imgSize), "num_classes": .int(c.numClasses)])
    }

    /// `spec` decoded and checked: the dimensions fit together and the preprocessing is valid.
    func decode(_ spec: String, source: String) throws -> SwinSpec {
        let s = try SpecJSON.decode(SwinSpec.self, from: spec, source: source, family: "Swin")
        try s.swin.validate(source: source)
        try s.preprocess.validate(source: source, channels: s.swin.inChans, imageSize: s.swin.imgSize)
        return s
    }

    /// The config and preprocessing of float file `file`: the config from its ``ConfigSource``
    /// (timm's constructor arguments), the class, which must be SwinTransformer, from
    /// `timm_class` or else the config's Swin-only keys; ImageNet's mean/std and timm's crop 0.9
    /// unless the source says otherwise.
    static func resolve(_ file: TensorFile) throws -> (SwinConfig, PreprocessConfig) {
        let path = file.path
        guard let source = try ConfigSource.read(file), let config = source.config else {
            throw ModelError.unknownArchitecture(path: path, detail: "a Swin model needs timm_config metadata or its config in \(ConfigSource.sidecarPath(of: path))")
        }
        let timmClass = source.timmClass ?? (config["window_size"] != nil && config["depths"] != nil ? "SwinTransformer" : nil)
        guard timmClass == "SwinTransformer" else {
            throw ModelError.badConfig(source: source.name, key: "timm_class", detail: "expected SwinTransformer, got \(timmClass ?? "none")")
        }
        var pre = PreprocessConfig.imagenet
        pre.inputSize = (config["img_size"] as? Int) ?? pre.inputSize
        pre.cropPct = source.cropPct ?? 0.9   // timm's Swin default
        if let m = source.mean { pre.mean = m }
        if let s = source.std { pre.std = s }
        let swin = try SwinConfig(timmConfig: config, source: source.name)
        try pre.validate(source: source.name, channels: swin.inChans, imageSize: swin.imgSize)
        return (swin, pre)
    }
}

extension SwinConfig {
    /// The linear ops' timm names, in forward order (``SwinTransformer/linearOps``).
    public var linearOpNames: [String] {
        var names = ["patch_embed.proj"]
        for s in 0..<stages {
            if s > 0 { names.append("layers.\(s).downsample.reduction") }
            for b in 0..<depths[s] {
                let p = "layers.\(s).blocks.\(b)"
                names += ["\(p).attn.qkv", "\(p).attn.proj", "\(p).mlp.fc1", "\(p).mlp.fc2"]
            }
        }
        return names + ["head.fc"]
    }

    /// Every attention block `layers.s.blocks.b.attn` with its stage, in forward order.
    public var attentionBlocks: [(name: String, stage: Int)] {
        (0..<stages).flatMap { s in (0..<depths[s]).map { ("layers.\(s).blocks.\($0).attn", s) } }
    }
}

extension SwinTransformer: SearchableModel {
    /// Opens `path`, resolves its config (``SwinFamily``) and loads it strictly.
    public convenience init(path: String) throws {
        let file = try TensorFile.open(path: path)
        let (config, pre) = try SwinFamily.resolve(file)
        try self.init(file: file, config: config, preprocess: pre)
    }

    public var family: any ModelFamily { SwinFamily() }
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

    public var attentionBlocks: [String] { config.attentionBlocks.map(\.name) }

    public func encodedSpec() throws -> String { try SpecJSON.encode(SwinSpec(swin: config, preprocess: preprocess)) }

    public func storedWeightShape(_ name: String, out: Int, in inF: Int) -> [Int] { config.weightShape(name, out: out, in: inF) }

    /// The norms and the relative position bias tables.
    public var floatTensors: [(key: String, tensor: Tensor)] {
        var t: [(key: String, tensor: Tensor)] = []
        func addNorm(_ p: String, _ n: LayerNorm) { t += [("\(p).weight", n.weight), ("\(p).bias", n.bias)] }
        addNorm("patch_embed.norm", patchNorm)
        for (s, merge) in merges.enumerated() { if let merge { addNorm("layers.\(s).downsample.norm", merge.norm) } }
        for (s, blocks) in stages.enumerated() {
            for (b, blk) in blocks.enumerated() {
                let p = "layers.\(s).blocks.\(b)"
                addNorm("\(p).norm1", blk.norm1); addNorm("\(p).norm2", blk.norm2)
                t.append(("\(p).attn.relative_position_bias_table", blk.relativePositionBias))
            }
        }
        addNorm("norm", norm)
        return t
    }
}
