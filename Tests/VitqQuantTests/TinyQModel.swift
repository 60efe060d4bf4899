import Foundation
import VitqFormats
import VitqModels
import VitqQuant
import VitqTensor
import VitqTestSupport

/// Tiny quantized files made at test time: the seeds of the crafted-file tests and the
/// quantized-file fuzzer (a few KB each, so a million mutations stay fast).
enum TinyQModel {
    /// Standard-normal images [count, 3, size, size].
    static func images(_ count: Int, size: Int, seed: UInt64) -> Tensor {
        var rng = SeededRandom(seed: seed)
        return Tensor(shape: [count, 3, size, size], values: (0..<(count * 3 * size * size)).map { _ in Float(rng.normal()) })
    }

    static func provenance(_ recipe: Recipe) -> QModelProvenance {
        QModelProvenance(sourceSHA256: String(repeating: "0", count: 64), sourceName: "tiny", recipeJSON: recipe.canonicalJSON)
    }

    /// ``TinyViTFile`` max-calibrated with `recipe` (one op kept in float by default) and written to
    /// `dir`/`name`; returns the quantized file's path.
    static func vit(in dir: String, name: String = "qvit", recipe: Recipe? = nil) throws -> String {
        let fp = try VisionTransformer(path: try TinyViTFile.write(to: dir + "/\(name)-float.safetensors"))
        var r = recipe ?? Recipe()
        if recipe == nil { r.keepFloat = 1 }
        let cal = MinMaxCalibrator(model: fp, recipe: r)
        cal.observe(images(2, size: TinyViTFile.img, seed: 5))
        let path = dir + "/\(name).safetensors"
        try QModelFile.write(try cal.finish(), provenance: provenance(r), to: path)
        return path
    }

    /// A tiny Swin (16×16 images, patch 2, window 4, width 4, one stage of two blocks, the second
    /// with shifted windows) max-calibrated and written to `dir`/`name`. One stage keeps the
    /// header small: the fuzzer's time per input is mostly the JSON header's parse.
    static func swin(in dir: String, name: String = "qswin") throws -> String {
        var c = SwinConfig()
        c.imgSize = 16; c.patchSize = 2; c.windowSize = 4; c.embedDim = 4; c.depths = [2]; c.numHeads = [1]
        c.mlpRatio = 2; c.numClasses = 3
        let floatPath = dir + "/\(name)-float.safetensors"
        try SyntheticModel.swin(c, name: "tiny-swin", seed: 2).write(to: floatPath)
        let fp = try SwinTransformer(path: floatPath)
        var r = Recipe()
        r.keepFloat = 1
        let cal = MinMaxCalibrator(model: fp, recipe: r)
        cal.observe(images(2, size: c.imgSize, seed: 6))
        let path = dir + "/\(name).safetensors"
        try QModelFile.write(try cal.finish(), provenance: provenance(r), to: path)
        return path
    }
}
