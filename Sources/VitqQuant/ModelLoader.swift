import VitqFormats
import VitqModels

/// Opens any model vitq runs: a float timm file, or a vitq quantized file (executed by the
/// integer engine, or fake-quantized in float when `mode` says so).
public enum ModelLoader {
    public static func load(path: String, overrides: ModelOverrides = ModelOverrides(), mode: EngineMode = .integer) throws -> VisionTransformer {
        let file = try SafeTensorsFile(path: path)
        if QModelFile.isQuantized(file) { return try QModelFile.read(file).network.makeModel(mode) }
        return try VisionTransformer(file: file, spec: try ModelConfigResolver.resolve(file: file, overrides: overrides))
    }
}
