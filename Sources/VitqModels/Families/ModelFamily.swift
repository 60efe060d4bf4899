import Foundation
import VitqFormats

/// One model family vitq runs (ViT/DeiT, Swin): how its float files are recognised, how its
/// config is resolved and the model loaded strictly, how its spec is decoded again (from a
/// quantized file's `model` metadata or a JOB), and how it names itself in both.
///
/// ``ModelFamilies`` lists the families; nothing else decides between them. Adding a family is
/// one type conforming to this protocol, its model conforming to ``SearchableModel``, and an
/// entry in ``ModelFamilies/all``.
public protocol ModelFamily: Sendable {
    /// The family's name in a JOB and in `vitq inspect --json` (`vit`, `swin`).
    var name: String { get }
    /// The `architecture` metadata of its quantized files; nil: the file has no such key (ViT,
    /// whose files predate the key).
    var architectureTag: String? { get }
    /// Whether float file `file` holds a model of this family.
    func detects(_ file: TensorFile) -> Bool
    /// Resolves float file `file`'s config (`overrides`, from the command line, win) and loads
    /// the model strictly: every tensor by its checkpoint key and shape, and no other.
    func load(file: TensorFile, overrides: ModelOverrides) throws -> any SearchableModel
    /// Loads float file `file` strictly with `spec`, a spec this family encoded
    /// (``SearchableModel/encodedSpec()``); `source` names the spec in errors.
    func load(file: TensorFile, spec: String, source: String) throws -> any SearchableModel
    /// The model `spec` describes, checked against the size of `file` before anything is built:
    /// its op names and a builder that takes the other tensors from a loader.
    func blueprint(spec: String, source: String, file: TensorFile) throws -> ModelBlueprint
    /// What `vitq inspect` reports of `model`, a model of this family.
    func summary(of model: any SearchableModel) -> ModelSummary
}

/// A linear op as a checkpoint stores it.
public struct LinearLayout: Sendable {
    /// The timm module name.
    public var name: String
    public var outFeatures: Int, inFeatures: Int
    /// The stored weight's shape ([out, in], or a patch projection's conv shape).
    public var weightShape: [Int]
    /// Whether the bias may be absent.
    public var biasOptional: Bool
    public init(name: String, outFeatures: Int, inFeatures: Int, weightShape: [Int], biasOptional: Bool) {
        self.name = name; self.outFeatures = outFeatures; self.inFeatures = inFeatures
        self.weightShape = weightShape; self.biasOptional = biasOptional
    }
}

/// A decoded, size-checked spec of some family: the names of its ops, and how to build it.
public struct ModelBlueprint {
    /// Every linear op's name, in forward order.
    public let linearOps: [String]
    /// Every attention block (`….attn`) with its head count, in forward order.
    public let attentionBlocks: [(name: String, heads: Int)]
    /// Builds the model: its float tensors (norms, tokens, bias tables) from the loader, each
    /// linear op from the closure. The caller finishes the loader.
    public let build: (StrictTensorLoader, (LinearLayout) throws -> any LinearOp) throws -> any SearchableModel

    public init(linearOps: [String], attentionBlocks: [(name: String, heads: Int)],
                build: @escaping (StrictTensorLoader, (LinearLayout) throws -> any LinearOp) throws -> any SearchableModel) {
        self.linearOps = linearOps; self.attentionBlocks = attentionBlocks; self.build = build
    }
}

/// What `vitq inspect` says of a model besides its preprocessing, parameters and tensors.
public struct ModelSummary: Sendable {
    /// The reported family ("ViT", "DeiT", "Swin", …).
    public var familyName: String
    /// Where the config came from, when the family resolves one.
    public var configSource: String?
    /// The dimensions line of the text report.
    public var dimensionsText: String
    /// The dimensions by name, for JSON.
    public var dimensions: [String: Dimension]
    /// Further labelled lines (label, text) of the text report, also JSON keys.
    public var notes: [(label: String, text: String)]

    public init(familyName: String, configSource: String?, dimensionsText: String, dimensions: [String: Dimension],
                notes: [(label: String, text: String)] = []) {
        self.familyName = familyName; self.configSource = configSource; self.dimensionsText = dimensionsText
        self.dimensions = dimensions; self.notes = notes
    }

    /// A dimension's value: a number or one number per stage.
    public enum Dimension: Encodable, Sendable, Equatable {
        case int(Int)
        case ints([Int])
        public func encode(to encoder: Encoder) throws {
            var c = encoder.singleValueContainer()
            switch self {
            case let .int(v): try c.encode(v)
            case let .ints(v): try c.encode(v)
            }
        }
    }
}

/// A family's spec as JSON text: canonical (sorted keys) when written, so the same model always
/// gives the same bytes in a quantized file and a JOB.
public enum SpecJSON {
    public static func encode<T: Encodable>(_ spec: T) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: try e.encode(spec), as: UTF8.self)
    }

    /// `text` as a `T`; an error naming `source` and `family` when it is not one.
    public static func decode<T: Decodable>(_: T.Type, from text: String, source: String, family: String) throws -> T {
        do { return try JSONDecoder().decode(T.self, from: Data(text.utf8)) } catch {
            throw ModelError.invalidSpec(source: source, family: family, detail: "\(error)")
        }
    }
}
