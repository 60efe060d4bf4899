import ArgumentParser
import Foundation
import VitqFormats
import VitqModels
import VitqQuant
import VitqRuntime
import VitqTensor

/// The ViT a benchmark runs: the file at `path`, or else a random model of `arch` made through a
/// temporary file (removed at once). Returns its display name and the model.
func benchModel(path: String?, arch: String) throws -> (String, VisionTransformer) {
    if let path { return (path, try VisionTransformer(path: path)) }
    return ("synthetic \(arch)", try synthetic(arch, try SyntheticModel.vit(arch: arch)) { try VisionTransformer(path: $0) })
}

/// The model of any family a benchmark runs: a float file, or `synthetic:NAME` (a `vitq synth`
/// name, made through a temporary file, removed at once). Returns its display name and the model.
func benchAnyModel(_ spec: String) throws -> (String, any SearchableModel) {
    guard spec.hasPrefix("synthetic:") else { return (spec, try ModelLoader.loadFloat(path: spec)) }
    let arch = String(spec.dropFirst("synthetic:".count))
    return ("synthetic \(arch)", try synthetic(arch, try SyntheticModel.named(arch)) { try ModelLoader.loadFloat(path: $0) })
}

/// `load` of the random model `writer` holds, written to a temporary file for the call.
private func synthetic<T>(_ arch: String, _ writer: SafeTensorsWriter, _ load: (String) throws -> T) throws -> T {
    let tmp = NSTemporaryDirectory() + "vitq-bench-\(getpid())-\(arch).safetensors"
    try writer.write(to: tmp)
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    return try load(tmp)
}
