import VitqFormats
import VitqModels

/// Opens any model vitq runs: a float timm file (ViT/DeiT or Swin), or a vitq quantized file
/// (executed by the integer engine, or fake-quantized in float when `mode` says so).
public enum ModelLoader {
    public static func load(path: String, overrides: ModelOverrides = ModelOverrides(), mode: EngineMode = .integer) throws -> any ImageClassifier {
        let file = try SafeTensorsFile(path: path)
        if QModelFile.isQuantized(file) { return try QModelFile.read(file).model.makeModel(mode) }
        return try loadFloat(file: file, overrides: overrides)
    }

    /// A float model: Swin when the file says so (timm_class, or Swin's tensors), else ViT/DeiT.
    public static func loadFloat(path: String, overrides: ModelOverrides = ModelOverrides()) throws -> any SearchableModel {
        try loadFloat(file: try SafeTensorsFile(path: path), overrides: overrides)
    }

    public static func loadFloat(file: SafeTensorsFile, overrides: ModelOverrides) throws -> any SearchableModel {
        if isSwin(file) {
            if overrides.arch != nil || overrides.numHeads != nil {
                throw ModelError.badConfig(source: file.path, key: "--arch/--heads", detail: "a Swin file's architecture comes from its config")
            }
            let swin = try SwinTransformer(path: file.path)
            var pre = swin.preprocess
            if let m = overrides.mean { pre.mean = m }
            if let s = overrides.std { pre.std = s }
            if let c = overrides.cropPct { pre.cropPct = c }
            return pre == swin.preprocess ? swin : swin.withPreprocess(pre)
        }
        return try VisionTransformer(file: file, spec: try ModelConfigResolver.resolve(file: file, overrides: overrides))
    }

    /// Whether a float file holds a timm SwinTransformer.
    public static func isSwin(_ file: SafeTensorsFile) -> Bool {
        file.metadata["timm_class"] == "SwinTransformer" || file.tensors["layers.0.blocks.0.attn.relative_position_bias_table"] != nil
    }
}
