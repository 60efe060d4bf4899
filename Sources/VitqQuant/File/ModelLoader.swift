import VitqFormats
import VitqModels

/// Opens any model vitq runs: a float timm file of any family (``ModelFamilies``), or a vitq
/// quantized file (executed by the integer engine, or fake-quantized in float when `mode` says so).
public enum ModelLoader {
    public static func load(path: String, overrides: ModelOverrides = ModelOverrides(), mode: EngineMode = .integer) throws -> any ImageClassifier {
        let file = try TensorFile.open(path: path)
        if QModelFile.isQuantized(file) { return try QModelFile.read(file).model.makeModel(mode) }
        return try ModelFamilies.load(file: file, overrides: overrides)
    }

    /// A float model, of the family its file shows.
    public static func loadFloat(path: String, overrides: ModelOverrides = ModelOverrides()) throws -> any SearchableModel {
        try ModelFamilies.load(file: try TensorFile.open(path: path), overrides: overrides)
    }
}
