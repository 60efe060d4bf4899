import Foundation
import VitqData
import VitqFormats

extension SwinTransformer {
    /// Opens `path`. The config comes from the file's `timm_config` metadata or else the JSON
    /// beside it (`model.json`: `config`, timm's constructor arguments); the class, which must
    /// be SwinTransformer, from `timm_class` in either, or from the config's Swin-only keys.
    public convenience init(path: String) throws {
        let file = try SafeTensorsFile(path: path)
        let sidecarPath = (path.hasSuffix(".safetensors") ? String(path.dropLast(".safetensors".count)) : path) + ".json"
        let sidecarData = FileManager.default.fileExists(atPath: sidecarPath)
            ? try BoundedFile.read(sidecarPath, maxBytes: ModelConfigResolver.sidecarMaxBytes) : nil
        let sidecar = sidecarData.flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        let source: String, config: [String: Any]
        if let text = file.metadata["timm_config"] {
            source = "\(path) metadata"
            guard let c = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw ModelError.badConfig(source: source, key: "timm_config", detail: "not a JSON object")
            }
            config = c
        } else if let c = sidecar?["config"] as? [String: Any] {
            source = sidecarPath
            config = c
        } else {
            throw ModelError.unknownArchitecture(path: path, detail: "a Swin model needs timm_config metadata or its config in \(sidecarPath)")
        }
        let timmClass = file.metadata["timm_class"] ?? sidecar?["timm_class"] as? String
            ?? (config["window_size"] != nil && config["depths"] != nil ? "SwinTransformer" : nil)
        guard timmClass == "SwinTransformer" else {
            throw ModelError.badConfig(source: source, key: "timm_class", detail: "expected SwinTransformer, got \(timmClass ?? "none")")
        }
        var pre = PreprocessConfig.imagenet
        pre.inputSize = (config["img_size"] as? Int) ?? pre.inputSize
        pre.cropPct = 0.9   // timm's Swin default
        func floats(_ key: String) throws -> [Float]? {
            let raw: Any
            if let text = file.metadata[key] {
                guard let v = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) else {
                    throw ModelError.badConfig(source: "\(path) metadata", key: key, detail: "not JSON")
                }
                raw = v
            } else if let v = sidecar?[key] {
                raw = v
            } else {
                return nil
            }
            guard let a = raw as? [Double], a.count == 3, a.allSatisfy({ $0.isFinite }) else {
                throw ModelError.badConfig(source: source, key: key, detail: "expected 3 numbers")
            }
            return a.map(Float.init)
        }
        if let m = try floats("mean") { pre.mean = m }
        if let s = try floats("std") {
            guard s.allSatisfy({ $0 > 0 }) else { throw ModelError.badConfig(source: source, key: "std", detail: "expected positive numbers") }
            pre.std = s
        }
        if let cp = file.metadata["crop_pct"].flatMap(Double.init) ?? sidecar?["crop_pct"] as? Double { pre.cropPct = cp }
        let swin = try SwinConfig(timmConfig: config, source: source)
        try pre.validate(source: source, channels: swin.inChans, imageSize: swin.imgSize)
        try self.init(file: file, config: swin, preprocess: pre)
    }
}
