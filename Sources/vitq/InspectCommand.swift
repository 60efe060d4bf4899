import ArgumentParser
import Foundation
import VitqData
import VitqFormats
import VitqModels
import VitqQuant

/// `vitq inspect`: what a model file holds (a float model of any family, or a quantized file).
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inspect", abstract: "Print a model's family, dimensions, parameter count and tensors.")

    @Argument(help: "Model file (.safetensors, a PyTorch .pth/.pt state dict, or a vitq quantized file).")
    var model: String
    @OptionGroup var modelOptions: ModelOptions
    @Flag(help: "Print one JSON object (family, dimensions, config source, preprocessing, tensors).")
    var json = false

    /// What `--json` prints.
    struct Report: Encodable {
        var file: String
        /// The file format (`safetensors`, `pytorch`, `vitq-quantized`).
        var format: String
        /// The family's registry name (`vit`, `swin`) and its reported name (ViT, DeiT, Swin, …).
        var family: String, familyName: String
        var configSource: String?
        var dimensions: [String: ModelSummary.Dimension]
        var notes: [String: String]
        var preprocess: PreprocessConfig
        var parameters: Int
        var quantized: Quantized?
        var tensors: [Tensor]

        struct Quantized: Encodable {
            var format: String, formatVersion: Int, sourceName: String, sourceSHA256: String, recipe: String
            var quantizedLinearOps: Int, linearOps: Int, quantizedAttentionBlocks: Int, attentionBlocks: Int
        }
        struct Tensor: Encodable { var name: String, dtype: String, shape: [Int] }
    }

    func run() throws {
        try reportingErrors {
            let file = try TensorFile.open(path: model)
            var lines = ["file        \(model)"]
            let isQuantized = QModelFile.isQuantized(file)
            let format = isQuantized ? "vitq-quantized" : file.format.rawValue
            lines.append("format      " + (isQuantized ? "vitq quantized model (\(QModelFile.formatName) version \(QModelFile.version), safetensors)" : file.format.displayName))
            let float: any SearchableModel, runnable: any ImageClassifier
            var quantized: Report.Quantized?
            if isQuantized {
                let (q, prov) = try QModelFile.read(file)
                float = q.base
                runnable = q.makeModel(.integer)
                let count = q.linear.values.filter { if case .quantized = $0 { return true } else { return false } }.count
                let attention = q.quantizedAttention
                quantized = Report.Quantized(format: QModelFile.formatName, formatVersion: QModelFile.version, sourceName: prov.sourceName,
                                             sourceSHA256: prov.sourceSHA256, recipe: prov.recipeJSON, quantizedLinearOps: count,
                                             linearOps: q.linear.count, quantizedAttentionBlocks: attention.quantized, attentionBlocks: attention.total)
                lines += [
                    "family      \(runnable.familyName), quantized (\(QModelFile.formatName) version \(QModelFile.version))",
                    "source      \(prov.sourceName) (sha256 \(prov.sourceSHA256))",
                    "recipe      \(prov.recipeJSON)",
                    "quantized   \(count) of \(q.linear.count) linear ops; attention products in \(attention.quantized) of \(attention.total) blocks",
                    preprocessLine(runnable.preprocess),
                ]
            } else {
                float = try ModelFamilies.load(file: file, overrides: modelOptions.overrides)
                runnable = float
                let s = float.family.summary(of: float)
                lines.append("family      \(s.familyName)")
                if let c = s.configSource { lines.append("config      \(c)") }
                lines.append("dimensions  \(s.dimensionsText)")
                lines += s.notes.map { $0.label.padding(toLength: 12, withPad: " ", startingAt: 0) + $0.text }
                lines += [preprocessLine(float.preprocess), "parameters  \(float.parameterCount)"]
            }
            if json {
                let s = float.family.summary(of: float)
                try printJSON(Report(
                    file: model, format: format, family: float.family.name, familyName: runnable.familyName, configSource: s.configSource,
                    dimensions: s.dimensions, notes: Dictionary(s.notes.map { ($0.label, $0.text) }, uniquingKeysWith: { a, _ in a }),
                    preprocess: runnable.preprocess, parameters: runnable.parameterCount, quantized: quantized,
                    tensors: file.names.map { Report.Tensor(name: $0, dtype: file.tensors[$0]!.dtype.rawValue, shape: file.tensors[$0]!.shape) }))
                return
            }
            lines.append("tensors     \(file.tensors.count)")
            let w = file.names.map(\.count).max() ?? 10
            for name in file.names {
                let i = file.tensors[name]!
                lines.append("  " + name.padding(toLength: w, withPad: " ", startingAt: 0) + "  " + i.dtype.rawValue.padding(toLength: 5, withPad: " ", startingAt: 0) + " \(i.shape)")
            }
            print(lines.joined(separator: "\n"))
        }
    }

    func preprocessLine(_ p: PreprocessConfig) -> String {
        "preprocess  resize shorter side to \(p.resizeShorterSide) (\(p.interpolation)), crop \(p.inputSize), mean \(p.mean), std \(p.std)"
    }
}
