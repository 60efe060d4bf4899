import ArgumentParser
import Foundation
import VitqFormats
import VitqModels
import VitqONNX
import VitqQuant
import VitqRuntime

/// `vitq export`: a model as ONNX that ONNX Runtime runs with vitq's own numbers: a float file as
/// the fp32 graph, a quantized file as the integer engine's arithmetic (`MatMulInteger` with
/// vitq's quantizers and epilogues). ViT, DeiT and Swin; the metadata carries the provenance.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a float or quantized ViT/DeiT/Swin as ONNX (fp32; a quantized file as integer MatMulInteger or qdq).")

    @Argument(help: "A float model or a vitq quantized file.")
    var model: String
    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Output .onnx file.")
    var out: String
    @Option(help: "For a quantized file: integer (MatMulInteger on vitq's integer codes) or qdq (QuantizeLinear/DequantizeLinear before float products).")
    var format: ExportFormat = .integer
    @Option(help: "ONNX opset (17 to 21).")
    var opset = 17
    @Flag(help: "Print one JSON object (out, bytes, opset, format).")
    var json = false

    /// What `--json` prints.
    struct Written: Encodable { var out: String, bytes: Int, opset: Int, format: String }

    func validate() throws {
        guard (17...21).contains(opset) else { throw ValidationError("--opset \(opset): vitq writes opsets 17 to 21 (LayerNormalization needs 17)") }
    }

    func run() throws {
        try reportingErrors {
            try OutputChecks.writableFolder(of: out, flag: "--out")
            try OutputChecks.notAnInput(out, flag: "--out", inputs: [("model", model)])
            let file = try TensorFile.open(path: model)
            var metadata = [("vitq_version", BuildInfo.version)]
            let network: QuantizedNetwork?, base: any SearchableModel
            if QModelFile.isQuantized(file) {
                let (net, provenance) = try QModelFile.read(file)
                network = net; base = net.base
                metadata += [("source_sha256", provenance.sourceSHA256), ("source_name", provenance.sourceName),
                             ("recipe", provenance.recipeJSON), ("format", format.rawValue)]
            } else {
                network = nil
                base = try ModelFamilies.load(file: file, overrides: modelOptions.overrides)
                metadata += [("source_sha256", try SHA256.hex(ofFile: model)), ("source_name", (model as NSString).lastPathComponent), ("format", "fp32")]
            }
            // The preprocessing the graph's input expects (pixel_values = (u8/255 − mean)/std).
            metadata += [("preprocess_mean", base.preprocess.mean.map { "\($0)" }.joined(separator: ",")),
                         ("preprocess_std", base.preprocess.std.map { "\($0)" }.joined(separator: ",")),
                         ("preprocess_crop_pct", "\(base.preprocess.cropPct)"), ("input_size", "\(base.preprocess.inputSize)")]
            let proto: Onnx_ModelProto
            do { proto = try ONNXExport.model(base, network: network, format: format, opset: opset, metadata: metadata, producerVersion: BuildInfo.version) }
            catch let e as ExportError { throw FlagError("\(model): \(e)") }
            let data = try proto.serializedBytes() as Data
            try AtomicFile.write(data, to: out)
            let kind = network == nil ? "fp32" : format.rawValue
            if json { try printJSON(Written(out: out, bytes: data.count, opset: opset, format: kind)) }
            else { print("wrote \(out) (\(data.count) bytes, opset \(opset), \(kind))") }
        }
    }
}

extension ExportFormat: ExpressibleByArgument {}
