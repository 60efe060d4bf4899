import Foundation
import VitqModels
import VitqQuant

/// A recipe feature or model the export cannot express, naming it.
public struct ExportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// What `vitq export --format` writes for a quantized file.
public enum ExportFormat: String, CaseIterable, Sendable {
    /// `MatMulInteger` on the integer codes vitq computes, with its epilogues: the same numbers.
    case integer
    /// QuantizeLinear/DequantizeLinear pairs before float products, for QDQ toolchains.
    case qdq
}

/// `vitq export`'s entry point: one ONNX graph over `pixel_values` [batch, C, H, W] (normalised,
/// as vitq's preprocessing gives them) to `logits` [batch, classes], for ViT/DeiT (``ViTExport``)
/// and Swin (``SwinExport``):
/// - a float file: the float model (fp32 `MatMul`, `LayerNormalization`, `Softmax`, exact-erf GELU);
/// - a quantized file: every quantized product as `format` says (``ExportOps``).
public enum ONNXExport {
    /// The ONNX model of `base`, quantized as `network` says (nil: the float model).
    public static func model(_ base: any SearchableModel, network: QuantizedNetwork?, format: ExportFormat, opset: Int,
                             metadata: [(String, String)], producerVersion: String) throws -> Onnx_ModelProto {
        let b = GraphBuilder(name: network == nil ? "vitq_fp32" : "vitq_\(format.rawValue)")
        let ops = ExportOps(linear: network?.linear ?? [:], attention: network?.attention ?? [:], opset: opset, format: format, b: b, q: IntegerOps(b: b))
        switch base {
        case let vit as VisionTransformer: try ViTExport(vit: vit, ops: ops).build()
        case let swin as SwinTransformer: try SwinExport(swin: swin, ops: ops).build()
        default: throw ExportError("a \(base.familyName) model; vitq export writes ViT, DeiT and Swin")
        }
        return b.model(opset: opset, metadata: metadata, producerVersion: producerVersion)
    }
}
