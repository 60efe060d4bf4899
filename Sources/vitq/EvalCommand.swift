import ArgumentParser
import Foundation
import VitqFormats
import VitqModels
import VitqQuant
import VitqRuntime

/// `vitq eval`: top-1 / top-5 and throughput of a model on a dataset.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "eval", abstract: "Evaluate a model: top-1, top-5 and images/s.")

    @Argument(help: "Model file: safetensors (timm or Hugging Face), a PyTorch .pth/.pt state dict, or a vitq quantized file.")
    var model: String
    @OptionGroup var dataset: DatasetOptions
    @Option(help: "First image to evaluate.")
    var offset: Int = 0
    @Option(help: "Number of images (default: all after --offset).")
    var limit: Int?
    @Option(help: "Images per forward pass.")
    var batch: Int = 32
    @Option(name: .customLong("dump-logits"), help: "Write the logits [N, classes] to this float32 .npy file.")
    var dumpLogits: String?
    @Option(help: "How a quantized file runs: integer (the int8 engine) or fake-quant (the same quantizers in float).")
    var engine: String = "integer"
    @Flag(help: "Print one JSON object instead of text.")
    var json = false
    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var threadOptions: ThreadOptions

    func validate() throws {
        if batch < 1 { throw ValidationError("--batch must be at least 1") }
        if batch > FlagLimits.maxBatch { throw FlagError("--batch \(batch) is more than \(FlagLimits.maxBatch) images per pass") }
        if offset < 0 { throw ValidationError("--offset must be non-negative") }
        if let l = limit, l < 1 { throw ValidationError("--limit must be at least 1") }
        if EngineMode(rawValue: engine) == nil { throw ValidationError("--engine must be integer or fake-quant") }
    }

    func run() throws {
        try reportingErrors {
            threadOptions.apply()
            if let out = dumpLogits {
                try OutputChecks.writableFolder(of: out, flag: "--dump-logits")
                try OutputChecks.notAnInput(out, flag: "--dump-logits", inputs: [("model", model), ("--data", dataset.data),
                                                                                 ("--labels", dataset.labels), ("--class-index", dataset.classIndex)])
            }
            let vit = try ModelLoader.load(path: model, overrides: modelOptions.overrides, mode: EngineMode(rawValue: engine)!)
            let ds = try dataset.open(vit.preprocess, classes: vit.numClasses)
            let range = try Inputs.range(count: ds.count, offset: offset, limit: limit, name: dataset.data)
            let r = try Evaluator.run(model: vit, dataset: ds, range: range, batch: batch, progress: ProgressBar("eval", total: range.count))
            if let out = dumpLogits {
                try NpyWriter.write(floats: r.logits, shape: [r.images, r.classes], to: out)
            }
            if json {
                var obj: [String: Any] = [
                    "model": model, "data": dataset.data, "images": r.images, "offset": offset,
                    "images_per_second": r.imagesPerSecond, "seconds": r.seconds, "batch": batch,
                ]
                if r.labelled {
                    obj["top1"] = r.top1; obj["top5"] = r.top5
                    obj["top1_correct"] = r.top1Correct; obj["top5_correct"] = r.top5Correct
                } else {
                    obj["top1"] = NSNull(); obj["top5"] = NSNull()
                }
                try printJSON(object: obj)
            } else {
                print("model   \(model) (\(vit.familyName), \(vit.parameterCount) parameters)")
                print("images  \(r.images) (rows \(range.lowerBound)..<\(range.upperBound) of \(dataset.data))")
                if r.labelled {
                    print(String(format: "top-1   %.4f (%d/%d)", r.top1, r.top1Correct, r.images))
                    print(String(format: "top-5   %.4f (%d/%d)", r.top5, r.top5Correct, r.images))
                } else {
                    print("top-1   n/a (no labels)")
                }
                print(String(format: "speed   %.1f images/s (batch %d)", r.imagesPerSecond, batch))
            }
        }
    }
}
