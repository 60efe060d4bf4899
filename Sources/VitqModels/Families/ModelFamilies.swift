import VitqFormats

/// The registry of model families: the one place that decides which family a file, a JOB or a
/// quantized file holds.
public enum ModelFamilies {
    /// Every family, in detection order (torch-vit before vit: both files have a `cls_token`).
    public static let all: [any ModelFamily] = [TorchEncoderViTFamily(), ViTFamily(), SwinFamily()]
    /// The family of a float file no family recognises (its loader names what is missing).
    public static let fallback: any ModelFamily = ViTFamily()

    /// The family named `name` in a JOB, or nil.
    public static func named(_ name: String) -> (any ModelFamily)? { all.first { $0.name == name } }

    /// The one-line refusal of a JOB whose model spec names `name`, a family this build lacks.
    public static func unknownFamily(_ name: String) -> String {
        "modelSpec: unknown model family '\(name)' (this worker knows \(names))"
    }

    /// The family of a quantized file whose `architecture` metadata is `tag` (nil: absent; a
    /// family's name is accepted too), or nil.
    public static func tagged(_ tag: String?) -> (any ModelFamily)? {
        all.first { $0.architectureTag == tag || $0.name == tag }
    }

    /// The known names, for messages ("vit, swin").
    public static var names: String { all.map(\.name).joined(separator: ", ") }

    /// The family of float file `file`.
    public static func detect(_ file: TensorFile) -> any ModelFamily {
        all.first { $0.detects(file) } ?? fallback
    }

    /// The float model in `file`: its family detected, its config resolved, loaded strictly.
    public static func load(file: TensorFile, overrides: ModelOverrides = ModelOverrides()) throws -> any SearchableModel {
        try detect(file).load(file: file, overrides: overrides)
    }
}
