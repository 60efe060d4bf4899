import Foundation
import VitqData
import VitqFormats

/// Settings given on the command line; each wins over what the file and its config say.
public struct ModelOverrides: Sendable, Equatable {
    /// A known timm name, used when the file carries no config.
    public var arch: String?
    public var numHeads: Int?
    public var mean: [Float]?
    public var std: [Float]?
    public var cropPct: Double?
    public init(arch: String? = nil, numHeads: Int? = nil, mean: [Float]? = nil, std: [Float]? = nil,
                cropPct: Double? = nil) {
        self.arch = arch; self.numHeads = numHeads; self.mean = mean; self.std = std
        self.cropPct = cropPct
    }
}

/// Decides a model's architecture and preprocessing.
///
/// Dimensions that tensor shapes determine (embedding width, depth, patch size, MLP width,
/// classes, distillation token, image size from the position embedding) are read from the
/// shapes. The rest — above all the number of attention heads, which no shape tells — comes
/// from the first of these sources that exists:
/// 1. the file's `timm_config` metadata (timm constructor arguments as JSON, optionally with
///    `timm_class`, `mean`, `std`, `crop_pct` metadata keys);
/// 2. a JSON beside the model (`model.json` for `model.safetensors`) with keys `timm_class`,
///    `config`, `mean`, `std` (and optionally `crop_pct`, `interpolation`, `state_dict_keys`);
/// 3. the table of known timm names (``KnownModels``), matched on the `architecture` metadata
///    key or on the file name;
/// 4. `--arch NAME` on the command line.
/// A config that disagrees with the shapes is an error naming the key. Command-line flags
/// (`--heads`, `--mean`, `--std`, `--crop-pct`) override everything. When no source gives the
/// head count, vitq assumes timm's usual head width of 64 (heads = embed_dim / 64) and says so.
public enum ModelConfigResolver {
    /// Keys of timm's VisionTransformer constructor that vitq understands.
    static let vitConfigKeys: Set<String> = [
        "img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "depth", "num_heads",
        "mlp_ratio", "qkv_bias", "class_token", "global_pool", "drop_rate", "pos_drop_rate",
        "proj_drop_rate", "attn_drop_rate", "drop_path_rate", "weight_init",
    ]
    /// The largest config JSON read beside a model (its `state_dict_keys` list every tensor).
    public static let sidecarMaxBytes = 16 << 20

    /// Resolves the spec of the ViT/DeiT in `file`.
    public static func resolve(file: TensorFile, overrides: ModelOverrides = ModelOverrides()) throws -> ModelSpec {
        let path = file.path
        func shape(_ k: String) throws -> [Int] {
            guard let i = file.tensors[k] else { throw ModelError.missingKey(path: path, key: k) }
            return i.shape
        }
        // MARK: dimensions from shapes
        var cfg = ViTConfig()
        let pw = try shape("patch_embed.proj.weight")
        guard pw.count == 4, pw[2] == pw[3] else {
            throw ModelError.wrongShape(path: path, key: "patch_embed.proj.weight", expected: [-1, 3, -1, -1], actual: pw)
        }
        cfg.embedDim = pw[0]; cfg.inChans = pw[1]; cfg.patchSize = pw[2]
        var depth = 0
        while file.tensors["blocks.\(depth).norm1.weight"] != nil { depth += 1 }
        guard depth > 0 else { throw ModelError.missingKey(path: path, key: "blocks.0.norm1.weight") }
        cfg.depth = depth
        cfg.mlpHidden = try shape("blocks.0.mlp.fc1.weight").first ?? 0
        cfg.numClasses = try shape("head.weight").first ?? 0
        cfg.distilled = file.tensors["dist_token"] != nil
        cfg.qkvBias = file.tensors["blocks.0.attn.qkv.bias"] != nil
        let pos = try shape("pos_embed")
        guard pos.count == 3 else { throw ModelError.wrongShape(path: path, key: "pos_embed", expected: [1, -1, cfg.embedDim], actual: pos) }
        // At least one patch token after the prefix tokens, on a square grid.
        let patchTokens = pos[1] - cfg.prefixTokens
        let grid = patchTokens > 0 ? Int(Double(patchTokens).squareRoot().rounded()) : 0
        guard grid > 0, grid.multipliedReportingOverflow(by: grid) == (patchTokens, false) else {
            throw ModelError.wrongShape(path: path, key: "pos_embed", expected: [1, -1, cfg.embedDim], actual: pos)
        }
        let (imgSize, overflow) = grid.multipliedReportingOverflow(by: cfg.patchSize)
        guard cfg.patchSize > 0, !overflow else {
            throw ModelError.wrongShape(path: path, key: "patch_embed.proj.weight", expected: [cfg.embedDim, cfg.inChans, -1, -1], actual: pw)
        }
        cfg.imgSize = imgSize

        // MARK: the config source
        let found = try findSource(file: file, arch: overrides.arch)
        let source = found?.source
        var pre = PreprocessConfig.imagenet
        var family: ViTVariant = cfg.distilled ? .deitDistilled : .vit
        var headsSource = "none"
        var heads: Int?
        if let s = source {
            if let tc = s.timmClass {
                switch tc {
                case "VisionTransformer": break
                case "VisionTransformerDistilled": family = .deitDistilled
                default: throw ModelError.unknownArchitecture(path: path, detail: "timm class '\(tc)' (from \(s.name)) is not a ViT/DeiT; supported: VisionTransformer, VisionTransformerDistilled")
                }
            }
            for (k, v) in s.config ?? [:] {
                guard vitConfigKeys.contains(k) else { throw ModelError.badConfig(source: s.name, key: k, detail: "unknown key for a ViT/DeiT config") }
                func int() throws -> Int {
                    guard let i = v as? Int else { throw ModelError.badConfig(source: s.name, key: k, detail: "expected an integer") }
                    return i
                }
                func check(_ value: Int, _ derived: Int) throws {
                    guard value == derived else { throw ModelError.badConfig(source: s.name, key: k, detail: "says \(value) but the tensors give \(derived)") }
                }
                switch k {
                case "img_size": try check(try int(), cfg.imgSize)
                case "patch_size": try check(try int(), cfg.patchSize)
                case "in_chans": try check(try int(), cfg.inChans)
                case "num_classes": try check(try int(), cfg.numClasses)
                case "embed_dim": try check(try int(), cfg.embedDim)
                case "depth": try check(try int(), cfg.depth)
                case "num_heads": heads = try int()
                case "mlp_ratio":
                    guard let r = v as? Double, r.isFinite, r > 0, r < 1e6 else { throw ModelError.badConfig(source: s.name, key: k, detail: "expected a positive number") }
                    try check(Int((Double(cfg.embedDim) * r).rounded()), cfg.mlpHidden)
                case "qkv_bias":
                    guard let b = v as? Bool, b == cfg.qkvBias else { throw ModelError.badConfig(source: s.name, key: k, detail: "does not match the tensors (qkv bias present: \(cfg.qkvBias))") }
                case "class_token":
                    guard let b = v as? Bool, b else { throw ModelError.badConfig(source: s.name, key: k, detail: "only class_token=true is supported") }
                case "global_pool":
                    guard let g = v as? String, g == "token" else { throw ModelError.badConfig(source: s.name, key: k, detail: "only global_pool='token' is supported") }
                default: break // dropout rates and weight_init do not affect inference
                }
            }
            if let known = found?.known {
                guard known.embedDim == cfg.embedDim, known.depth == cfg.depth, known.patchSize == cfg.patchSize else {
                    throw ModelError.badConfig(source: s.name, key: "architecture", detail: "\(known.name) is \(known.embedDim)-wide, depth \(known.depth), patch \(known.patchSize), but the tensors give \(cfg.embedDim), \(cfg.depth), \(cfg.patchSize)")
                }
                heads = heads ?? known.numHeads
                pre = known.preprocess
                if known.name.hasPrefix("deit") && !cfg.distilled { family = .deit }
            }
            if heads != nil { headsSource = s.name }
            if let m = s.mean { pre.mean = m }
            if let sd = s.std { pre.std = sd }
            if let c = s.cropPct { pre.cropPct = c }
            if let keys = s.stateDictKeys { try ConfigSource.checkKeys(keys, file: file) }
        }
        if let h = overrides.numHeads { heads = h; headsSource = "--heads" }
        if heads == nil, cfg.embedDim % 64 == 0 {
            heads = cfg.embedDim / 64
            headsSource = "assumed head width 64 (no config gave num_heads)"
        }
        guard let h = heads, h > 0, cfg.embedDim % h == 0 else {
            throw ModelError.badConfig(source: source?.name ?? path, key: "num_heads", detail: "\(heads.map(String.init) ?? "unknown") does not divide embed_dim \(cfg.embedDim); pass --heads")
        }
        cfg.numHeads = h
        try cfg.checkSizes(source: path, fileBytes: file.byteCount, tensorCount: file.tensors.count)
        if let m = overrides.mean { pre.mean = m }
        if let s = overrides.std { pre.std = s }
        if let c = overrides.cropPct { pre.cropPct = c }
        pre.inputSize = cfg.imgSize
        guard pre.mean.count == cfg.inChans, pre.std.count == cfg.inChans, pre.std.allSatisfy({ $0 > 0 }) else {
            throw ModelError.badConfig(source: source?.name ?? "flags", key: "mean/std", detail: "need \(cfg.inChans) values each, std > 0")
        }
        guard pre.cropPct > 0, pre.cropPct <= 1 else { throw ModelError.badConfig(source: source?.name ?? "flags", key: "crop_pct", detail: "must be in (0, 1]") }
        return ModelSpec(family: family, vit: cfg, preprocess: pre, configSource: source?.name ?? "tensor shapes only", headsSource: headsSource)
    }

    // MARK: sources

    /// The config source of `file` (``ConfigSource``), else the known timm name its
    /// `architecture` metadata, its file name or `arch` gives; with it the known entry.
    static func findSource(file: TensorFile, arch: String?) throws -> (source: ConfigSource, known: KnownModels.Entry?)? {
        if let s = try ConfigSource.read(file) {
            return (s, s.architecture.flatMap(KnownModels.lookup))
        }
        let stem = (file.path as NSString).lastPathComponent.replacingOccurrences(of: ".safetensors", with: "")
        for candidate in [file.metadata["architecture"], stem, arch].compactMap({ $0 }) {
            if let k = KnownModels.lookup(candidate) {
                return (ConfigSource(name: "known timm name '\(k.name)'"), k)
            }
        }
        if let arch { throw ModelError.badConfig(source: "--arch", key: "arch", detail: "'\(arch)' is not a known timm name; known: \(KnownModels.table.keys.sorted().joined(separator: ", "))") }
        return nil
    }
}
