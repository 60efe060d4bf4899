import Foundation
import VitqData
import VitqFormats

/// Hugging Face's `ViTForImageClassification` and `DeiTForImageClassificationWithTeacher`
/// safetensors, read as the timm model they are (``ViTFamily``): the tensors re-keyed to timm's
/// names (query, key and value joined into `attn.qkv`), the config from the `config.json` beside
/// the file, the normalisation from `preprocessor_config.json` when it is there.
///
/// Strict both ways: every Hugging Face tensor is used exactly once (another is an unexpected
/// tensor, named by its Hugging Face key), and config.json must agree with the tensor shapes.
enum HuggingFaceViT {
    /// The architectures read, and whether each has the distillation token and second head.
    static let architectures: [String: Bool] = ["ViTForImageClassification": false, "DeiTForImageClassificationWithTeacher": true]

    /// The model prefix (`vit.` or `deit.`) of a file in Hugging Face's layout, or nil.
    static func prefix(of file: TensorFile) -> String? {
        ["vit.", "deit."].first { file.tensors[$0 + "embeddings.cls_token"] != nil }
    }

    /// The timm name of Hugging Face key `key` (prefix `p`), or nil when it has none; query, key
    /// and value are joined separately.
    static func timmName(_ key: String, prefix p: String) -> String? {
        let fixed = [
            p + "embeddings.cls_token": "cls_token", p + "embeddings.distillation_token": "dist_token",
            p + "embeddings.position_embeddings": "pos_embed",
            p + "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
            p + "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
            p + "layernorm.weight": "norm.weight", p + "layernorm.bias": "norm.bias",
            "classifier.weight": "head.weight", "classifier.bias": "head.bias",
            "cls_classifier.weight": "head.weight", "cls_classifier.bias": "head.bias",
            "distillation_classifier.weight": "head_dist.weight", "distillation_classifier.bias": "head_dist.bias",
        ]
        if let t = fixed[key] { return t }
        let layer = p + "encoder.layer."
        guard key.hasPrefix(layer) else { return nil }
        let rest = key.dropFirst(layer.count)
        guard let dot = rest.firstIndex(of: "."), let i = Int(rest[..<dot]), String(i) == rest[..<dot] else { return nil }
        let sub = String(rest[rest.index(after: dot)...])
        let modules = ["layernorm_before": "norm1", "layernorm_after": "norm2", "attention.output.dense": "attn.proj",
                       "intermediate.dense": "mlp.fc1", "output.dense": "mlp.fc2"]
        for (hf, timm) in modules {
            for p in ["weight", "bias"] where sub == "\(hf).\(p)" { return "blocks.\(i).\(timm).\(p)" }
        }
        return nil
    }

    /// `file` (in Hugging Face's layout, model prefix `p`) with timm's tensor names, in memory.
    static func timmView(_ file: TensorFile, prefix p: String) throws -> TensorFile {
        var entries: [TensorFile.Entry] = []
        var used: Set<String> = []
        func bytes(_ key: String) throws -> Data { Data(try file.rawBytes(key)) }
        for key in file.names {
            guard let t = timmName(key, prefix: p) else { continue }
            let info = try file.info(key)
            guard !entries.contains(where: { $0.name == t }) else { throw ModelError.unexpectedKey(path: file.path, key: key) }
            entries.append(TensorFile.Entry(name: t, dtype: info.dtype, shape: info.shape, bytes: try bytes(key)))
            used.insert(key)
        }
        var layer = 0
        while file.tensors["\(p)encoder.layer.\(layer).layernorm_before.weight"] != nil {
            let base = "\(p)encoder.layer.\(layer).attention.attention."
            for part in ["weight", "bias"] {
                let keys = ["query", "key", "value"].map { "\(base)\($0).\(part)" }
                let present = keys.filter { file.tensors[$0] != nil }
                if present.isEmpty && part == "bias" { continue }
                if let missing = keys.first(where: { file.tensors[$0] == nil }) { throw ModelError.missingKey(path: file.path, key: missing) }
                let infos = try keys.map { try file.info($0) }
                let q = infos[0]
                for i in infos.dropFirst() where i.dtype != q.dtype || i.shape != q.shape {
                    throw ModelError.wrongShape(path: file.path, key: i.name, expected: q.shape, actual: i.shape)
                }
                guard let rows = q.shape.first, q.shape.count == (part == "weight" ? 2 : 1) else {
                    throw ModelError.wrongShape(path: file.path, key: q.name, expected: part == "weight" ? [-1, -1] : [-1], actual: q.shape)
                }
                var joined = Data()
                for k in keys { joined.append(try bytes(k)) }
                entries.append(TensorFile.Entry(name: "blocks.\(layer).attn.qkv.\(part)", dtype: q.dtype,
                                                shape: [3 * rows] + q.shape.dropFirst(), bytes: joined))
                used.formUnion(keys)
            }
            layer += 1
        }
        if let extra = file.names.first(where: { !used.contains($0) }) { throw ModelError.unexpectedKey(path: file.path, key: extra) }
        return try TensorFile(path: file.path, format: file.format, byteCount: file.byteCount, entries: entries, metadata: file.metadata)
    }

    /// The folder of `path`, where config.json and preprocessor_config.json are looked for.
    static func folder(of path: String) -> String { (path as NSString).deletingLastPathComponent }

    /// A JSON object file, or nil when `required` is false and it does not exist.
    static func jsonObject(_ path: String, required: Bool) throws -> [String: Any]? {
        guard FileManager.default.fileExists(atPath: path) else {
            if required { throw ModelError.badConfig(source: path, key: "(file)", detail: "missing: a Hugging Face checkpoint needs the config.json beside it") }
            return nil
        }
        let data: Data
        do { data = try BoundedFile.read(path, maxBytes: ModelConfigResolver.sidecarMaxBytes) } catch {
            throw ModelError.badConfig(source: path, key: "(file)", detail: "cannot read: \(error)".replacingOccurrences(of: "\(path): ", with: ""))
        }
        guard let d = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ModelError.badConfig(source: path, key: "(file)", detail: "not a JSON object")
        }
        return d
    }

    /// The spec of `timm` (the re-keyed `file`) from the config.json beside `file`: shapes give the
    /// dimensions, config.json the heads and LayerNorm eps and must agree with the shapes;
    /// `overrides` win as on any model.
    static func spec(file: TensorFile, timm: TensorFile, overrides: ModelOverrides) throws -> ModelSpec {
        let configPath = (folder(of: file.path) as NSString).appendingPathComponent("config.json")
        let c = try jsonObject(configPath, required: true)!
        func bad(_ key: String, _ detail: String) -> ModelError { .badConfig(source: configPath, key: key, detail: detail) }
        guard let archs = c["architectures"] as? [String], archs.count == 1, let distilled = architectures[archs[0]] else {
            throw bad("architectures", "expected one of \(architectures.keys.sorted().joined(separator: ", "))")
        }
        guard (c["hidden_act"] as? String ?? "gelu") == "gelu" else { throw bad("hidden_act", "only 'gelu' (exact erf) is implemented") }
        guard let heads = c["num_attention_heads"] as? Int else { throw bad("num_attention_heads", "expected an integer") }
        var o = overrides
        o.numHeads = overrides.numHeads ?? heads
        var spec = try ModelConfigResolver.resolve(file: timm, overrides: o)
        let v = spec.vit
        guard v.distilled == distilled else { throw bad("architectures", "\(archs[0]) does not match the tensors (distillation token present: \(v.distilled))") }
        let derived: [(String, Int)] = [("hidden_size", v.embedDim), ("num_hidden_layers", v.depth), ("intermediate_size", v.mlpHidden),
                                        ("image_size", v.imgSize), ("patch_size", v.patchSize), ("num_channels", v.inChans)]
        for (key, value) in derived {
            guard let given = c[key] else { continue }
            guard let g = given as? Int, g == value else { throw bad(key, "says \(given) but the tensors give \(value)") }
        }
        if let q = c["qkv_bias"] { guard let b = q as? Bool, b == v.qkvBias else { throw bad("qkv_bias", "does not match the tensors (qkv bias present: \(v.qkvBias))") } }
        if let labels = c["id2label"] as? [String: Any], labels.count != v.numClasses {
            throw bad("id2label", "names \(labels.count) classes but the classifier has \(v.numClasses)")
        }
        if let e = c["layer_norm_eps"] {
            guard let eps = e as? Double, eps.isFinite, eps > 0, eps < 1 else { throw bad("layer_norm_eps", "expected a small positive number") }
            spec.vit.layerNormEps = Float(eps)
        }
        spec.family = distilled ? .deitDistilled : .vit
        spec.configSource = configPath
        spec.headsSource = overrides.numHeads == nil ? "\(configPath) num_attention_heads" : "--heads"
        spec.preprocess = try preprocess(folder: folder(of: file.path), inputSize: v.imgSize, overrides: overrides)
        return spec
    }

    /// The normalisation and crop from preprocessor_config.json (absent: Hugging Face ViT's
    /// defaults, mean = std = 0.5, the whole image), then `overrides`. vitq resizes with PIL's
    /// bicubic filter, shorter side first, then crops the centre: a processor that asks for
    /// another filter, or squashes images to height × width (Hugging Face ViT's default, which
    /// keeps no aspect ratio), is refused; `--crop-pct` (e.g. 1 for square images) stands in for
    /// its `size`.
    static func preprocess(folder: String, inputSize: Int, overrides: ModelOverrides) throws -> PreprocessConfig {
        var pre = PreprocessConfig.inception
        pre.cropPct = 1
        let path = (folder as NSString).appendingPathComponent("preprocessor_config.json")
        if let p = try jsonObject(path, required: false) {
            func bad(_ key: String, _ detail: String) -> ModelError { .badConfig(source: path, key: key, detail: detail) }
            func floats(_ key: String) throws -> [Float]? {
                guard let v = p[key] else { return nil }
                guard let a = v as? [Double], a.count == 3, a.allSatisfy(\.isFinite) else { throw bad(key, "expected 3 numbers") }
                return a.map(Float.init)
            }
            if let m = try floats("image_mean") { pre.mean = m }
            if let s = try floats("image_std") { pre.std = s }
            if let r = p["resample"] {
                guard let code = r as? Int, code == 3 else { throw bad("resample", "vitq resizes with PIL bicubic (3) only; pass the images at \(inputSize)×\(inputSize) or use a bicubic processor") }
            }
            let crop = (p["do_center_crop"] as? Bool ?? false) ? (p["crop_size"] as? [String: Any])?["height"] as? Int : nil
            if overrides.cropPct == nil, let size = p["size"] as? [String: Any] {
                if let shortest = size["shortest_edge"] as? Int, shortest >= inputSize, shortest < 1 << 20 {
                    if let crop, crop != inputSize { throw bad("crop_size", "crops \(crop), but the model's input is \(inputSize)") }
                    // timm's side is int(input / crop_pct): half a pixel of margin makes it exactly `shortest`.
                    pre.cropPct = Double(inputSize) / (Double(shortest) + 0.5)
                } else {
                    throw bad("size", "only {shortest_edge} with an optional center crop is implemented (vitq keeps the aspect ratio); pass --crop-pct to choose the crop")
                }
            }
        }
        if let m = overrides.mean { pre.mean = m }
        if let s = overrides.std { pre.std = s }
        if let c = overrides.cropPct { pre.cropPct = c }
        pre.inputSize = inputSize
        return pre
    }
}
