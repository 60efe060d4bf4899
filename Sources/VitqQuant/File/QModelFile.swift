import Foundation
import VitqFormats
import VitqModels
import VitqTensor

/// A quantized file that cannot be read, naming the file and the key.
public struct QModelError: Error, CustomStringConvertible {
    public let description: String
    init(_ path: String, _ detail: String) { description = "\(path): \(detail)" }
}

/// Provenance stored with a quantized network.
public struct QModelProvenance: Equatable, Sendable {
    /// SHA-256 of the float model file that was quantized.
    public var sourceSHA256: String
    /// Its file name.
    public var sourceName: String
    /// The resolved recipe as canonical JSON.
    public var recipeJSON: String
    /// What partial quantization measured and chose (``SensitivityReport/canonicalJSON``), when
    /// the recipe asked for it: metadata `partial_quantization`.
    public var partialQuantizationJSON: String?
    /// What a mixed-precision allocation measured and chose (``MixedPrecisionReport/canonicalJSON``):
    /// metadata `mixed_precision`.
    public var mixedPrecisionJSON: String?
    public init(sourceSHA256: String, sourceName: String, recipeJSON: String, partialQuantizationJSON: String? = nil,
                mixedPrecisionJSON: String? = nil) {
        self.sourceSHA256 = sourceSHA256; self.sourceName = sourceName; self.recipeJSON = recipeJSON
        self.partialQuantizationJSON = partialQuantizationJSON; self.mixedPrecisionJSON = mixedPrecisionJSON
    }
}

/// The quantized model file: one `.safetensors` (Docs/QMODEL_FORMAT.md is the specification),
/// written by ``write(_:provenance:to:)`` (QModelWriter.swift) and read by ``read(_:)``
/// (QModelReader.swift); the quantizer entries of its `ops` metadata in QuantizerEntryCodec.swift.
public enum QModelFile {
    public static let formatName = "vitq.qmodel"
    public static let version = 1
}
