import ArgumentParser
import Foundation
import VitqFormats
import VitqModels
import VitqQuant
import VitqRuntime
import VitqTensor

/// The model a benchmark runs: the file at `path`, or else a random model of `arch` made through a
/// temporary file (removed at once). Returns its display name and the model.
func benchModel(path: String?, arch: String) throws -> (String, VisionTransformer) {
    if let path { return (path, try VisionTransformer(path: path)) }
    let tmp = NSTemporaryDirectory() + "vitq-bench-\(getpid())-\(arch).safetensors"
    try SyntheticModel.vit(arch: arch).write(to: tmp)
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    return ("synthetic \(arch)", try VisionTransformer(path: tmp))
}

/// The Swin a benchmark runs, when `spec` names one: a file holding a Swin state dict, or
/// `synthetic:swin-tiny|swin-small` (made through a temporary file, removed at once).
func benchSwin(_ spec: String) throws -> (String, SwinTransformer)? {
    if spec.hasPrefix("synthetic:") {
        let arch = String(spec.dropFirst("synthetic:".count))
        guard let config = SyntheticModel.swinAliases[arch] else { return nil }
        let tmp = NSTemporaryDirectory() + "vitq-bench-\(getpid())-\(arch).safetensors"
        try SyntheticModel.swin(config, name: arch).write(to: tmp)
        defer { try? FileManager.default.removeItem(atPath: tmp) }
        return ("synthetic \(arch)", try SwinTransformer(path: tmp))
    }
    guard ModelLoader.isSwin(try SafeTensorsFile(path: spec)) else { return nil }
    return (spec, try SwinTransformer(path: spec))
}
