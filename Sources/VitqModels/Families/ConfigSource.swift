import Foundation
import VitqFormats

/// A float model's config as its file or the JSON beside it gives it: the one reader every
/// family resolves its config from (``ModelConfigResolver`` for ViT/DeiT, ``SwinFamily``).
///
/// The first of: the file's `timm_config` metadata (timm constructor arguments as JSON, with the
/// optional `timm_class`, `architecture`, `mean`, `std` and `crop_pct` metadata keys); a JSON beside
/// the model (`M.json` for `M.safetensors`) with keys `timm_class`, `config`, `mean`, `std` and
/// optionally `crop_pct`, `interpolation`, `state_dict_keys`. Malformed values are errors naming
/// the key.
struct ConfigSource {
    /// Where the config came from, for messages and `vitq inspect`.
    var name: String
    var timmClass: String?
    /// The timm constructor arguments; nil when the source gives none.
    var config: [String: Any]?
    /// The `architecture` metadata key (a timm model name), beside `timm_config`.
    var architecture: String?
    var mean: [Float]?
    var std: [Float]?
    var cropPct: Double?
    var stateDictKeys: [String: [Int]]?

    init(name: String, timmClass: String? = nil, config: [String: Any]? = nil) {
        self.name = name; self.timmClass = timmClass; self.config = config
    }

    /// The keys a JSON beside a model may have.
    static let sidecarKeys: Set<String> = [
        "timm_class", "config", "mean", "std", "crop_pct", "interpolation", "input_size",
        "input", "taps", "state_dict_keys", "pretrained_cfg",
    ]

    /// The JSON beside the model at `path` (`M.json` for `M.safetensors`).
    static func sidecarPath(of path: String) -> String {
        (path.hasSuffix(".safetensors") ? String(path.dropLast(".safetensors".count)) : path) + ".json"
    }

    /// The config of `file`: its `timm_config` metadata, else the JSON beside it, else nil.
    static func read(_ file: TensorFile) throws -> ConfigSource? {
        let path = file.path
        let meta = file.metadata
        if let text = meta["timm_config"] {
            guard let d = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw ModelError.badConfig(source: path, key: "timm_config", detail: "metadata is not a JSON object")
            }
            var s = ConfigSource(name: "\(path) metadata 'timm_config'", timmClass: meta["timm_class"], config: d)
            s.architecture = meta["architecture"]
            s.mean = try meta["mean"].map { try floats(parseJSON($0, key: "mean", source: path), key: "mean", source: path) }
            s.std = try meta["std"].map { try floats(parseJSON($0, key: "std", source: path), key: "std", source: path) }
            s.cropPct = try meta["crop_pct"].map { v in
                guard let c = Double(v) else { throw ModelError.badConfig(source: path, key: "crop_pct", detail: "not a number") }
                return c
            }
            return s
        }
        let sidecar = sidecarPath(of: path)
        return FileManager.default.fileExists(atPath: sidecar) ? try readSidecar(sidecar) : nil
    }

    static func readSidecar(_ path: String) throws -> ConfigSource {
        let data: Data
        do { data = try BoundedFile.read(path, maxBytes: ModelConfigResolver.sidecarMaxBytes) } catch {
            throw ModelError.badConfig(source: path, key: "(file)", detail: "cannot read: \(error)".replacingOccurrences(of: "\(path): ", with: ""))
        }
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ModelError.badConfig(source: path, key: "(file)", detail: "not a JSON object")
        }
        for k in root.keys where !sidecarKeys.contains(k) {
            throw ModelError.badConfig(source: path, key: k, detail: "unknown key; expected one of \(sidecarKeys.sorted().joined(separator: ", "))")
        }
        var s = ConfigSource(name: path)
        s.timmClass = root["timm_class"] as? String
        if let c = root["config"] {
            guard let d = c as? [String: Any] else { throw ModelError.badConfig(source: path, key: "config", detail: "not an object") }
            s.config = d
        }
        if let m = root["mean"] { s.mean = try floats(m, key: "mean", source: path) }
        if let m = root["std"] { s.std = try floats(m, key: "std", source: path) }
        if let c = root["crop_pct"] {
            guard let v = c as? Double else { throw ModelError.badConfig(source: path, key: "crop_pct", detail: "not a number") }
            s.cropPct = v
        }
        if let i = root["interpolation"], (i as? String) != "bicubic" {
            throw ModelError.badConfig(source: path, key: "interpolation", detail: "only 'bicubic' is implemented")
        }
        if let keys = root["state_dict_keys"] {
            guard let d = keys as? [String: Any] else { throw ModelError.badConfig(source: path, key: "state_dict_keys", detail: "not an object") }
            var out: [String: [Int]] = [:]
            for (k, v) in d {
                guard let shape = v as? [Int] else { throw ModelError.badConfig(source: path, key: "state_dict_keys.\(k)", detail: "not a shape") }
                out[k] = shape
            }
            s.stateDictKeys = out
        }
        return s
    }

    /// Checks `file` holds exactly the tensors `keys` lists, with their shapes.
    static func checkKeys(_ keys: [String: [Int]], file: TensorFile) throws {
        for (k, shape) in keys.sorted(by: { $0.key < $1.key }) {
            guard let t = file.tensors[k] else { throw ModelError.missingKey(path: file.path, key: k) }
            guard t.shape == shape else { throw ModelError.wrongShape(path: file.path, key: k, expected: shape, actual: t.shape) }
        }
        for k in file.names where keys[k] == nil {
            throw ModelError.unexpectedKey(path: file.path, key: k)
        }
    }

    static func parseJSON(_ text: String, key: String, source: String) throws -> Any {
        guard let v = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) else {
            throw ModelError.badConfig(source: source, key: key, detail: "not valid JSON")
        }
        return v
    }

    static func floats(_ v: Any, key: String, source: String) throws -> [Float] {
        guard let a = v as? [Double] else { throw ModelError.badConfig(source: source, key: key, detail: "expected a list of numbers") }
        return a.map { Float($0) }
    }
}
