import ArgumentParser
import Foundation
import VitqData
import VitqFormats
import VitqModels
import VitqQuant
import VitqRuntime

/// The model, images and recipe of a calibration (`quantize`, `coordinator`, `bench distributed`).
struct CalibrationInputs: ParsableArguments {
    @Argument(help: "Float model file: safetensors (timm or Hugging Face) or a PyTorch .pth/.pt state dict.")
    var model: String
    @OptionGroup var dataset: DatasetOptions
    @Option(name: .customLong("calib-offset"), help: "First calibration image.")
    var calibOffset: Int = 0
    @Option(help: "Number of calibration images.")
    var calib: Int = 32
    @Option(help: "A built-in recipe name (Config/recipes/NAME.yaml) or a recipe file path.")
    var recipe: String = "minmax-w8a8"
    @OptionGroup var modelOptions: ModelOptions

    func validate() throws {
        if calib < 1 { throw ValidationError("--calib must be at least 1") }
        if calibOffset < 0 { throw ValidationError("--calib-offset must be non-negative") }
    }

    /// The input files, by flag, that no output may overwrite.
    var inputFiles: [(flag: String, path: String?)] {
        [("model", model), ("--data", dataset.data), ("--labels", dataset.labels), ("--class-index", dataset.classIndex), ("--recipe", recipe)]
    }

    /// Loads the recipe, the model and the dataset, and resolves the calibration range: images
    /// `--calib-offset ..< --calib-offset + --calib`, all of which the data must hold.
    func open() throws -> (recipe: Recipe, model: any SearchableModel, dataset: ImageDataset, calib: Range<Int>) {
        let r = try Recipe.load(recipe)
        let fp = try ModelLoader.loadFloat(path: model, overrides: modelOptions.overrides)
        try SensitivityAnalysis.checkNamedOps(recipe: r, model: fp, source: recipe)
        let ds = try dataset.open(fp.preprocess, classes: fp.numClasses)
        guard calibOffset < ds.count else {
            throw FlagError("--calib-offset \(calibOffset) is outside the \(ds.count) images of \(dataset.data)")
        }
        guard calib <= ds.count - calibOffset else {
            throw FlagError("--calib \(calib) from --calib-offset \(calibOffset) needs more than the \(ds.count) images of \(dataset.data) "
                            + "(at most \(ds.count - calibOffset))")
        }
        return (r, fp, ds, calibOffset..<(calibOffset + calib))
    }
}

/// What every calibrating command shares (`quantize`, `coordinator`): the inputs, the output,
/// the optional accuracy-protocol evaluation, and the report.
struct CalibrationOptions: ParsableArguments {
    @OptionGroup var inputs: CalibrationInputs
    var model: String { inputs.model }
    var dataset: DatasetOptions { inputs.dataset }
    var modelOptions: ModelOptions { inputs.modelOptions }
    @Option(help: "Output file for the quantized model.")
    var out: String
    @Option(name: .customLong("eval-offset"), help: "After writing, evaluate FP32 and the quantized model from this image on (the accuracy protocol uses 32): agreement and logit cosine, and with labels top-1 and the drop.")
    var evalOffset: Int?
    @Option(name: .customLong("eval-limit"), help: "Number of evaluation images (default: all after --eval-offset).")
    var evalLimit: Int?
    @Option(help: "Images per forward pass of the evaluation (calibration runs shard by shard: the recipe's shard_images).")
    var batch: Int = 32
    @Option(name: .customLong("memory-budget"), help: ArgumentHelp(stringLiteral: MemoryBudgetFlag.help))
    var memoryBudget: Int?
    @Option(name: .customLong("spill-dir"), help: "Directory for stage-1 spill files (default: the temporary directory).")
    var spillDir: String?
    @Flag(help: "Print one JSON object instead of text.")
    var json = false
    @OptionGroup var threadOptions: ThreadOptions

    func validate() throws {
        if batch < 1 { throw ValidationError("--batch must be at least 1") }
        if batch > FlagLimits.maxBatch { throw FlagError("--batch \(batch) is more than \(FlagLimits.maxBatch) images per pass") }
        try MemoryBudgetFlag.check(memoryBudget)
        if let o = evalOffset, o < 0 { throw FlagError("--eval-offset must be non-negative") }
        if let l = evalLimit, l < 1 { throw FlagError("--eval-limit must be at least 1") }
        if evalLimit != nil && evalOffset == nil { throw FlagError("--eval-limit needs --eval-offset") }
    }

    /// Stage 1's storage in this process (its budget reported on stderr when stage 1 starts).
    var storage: StageOneStorage { MemoryBudgetFlag.storage(mib: memoryBudget, spillDir: spillDir) }

    /// Applies `--threads`, checks the output (its folder, and that it is none of the inputs nor
    /// any of `alsoInputs`) and the spill folder, then ``CalibrationInputs/open()``, then the
    /// evaluation range: everything a run can refuse is refused before the calibration starts.
    func open(alsoInputs: [(flag: String, path: String?)] = []) throws
        -> (recipe: Recipe, model: any SearchableModel, dataset: ImageDataset, calib: Range<Int>) {
        threadOptions.apply()
        try OutputChecks.writableFolder(of: out, flag: "--out")
        try OutputChecks.notAnInput(out, flag: "--out", inputs: inputs.inputFiles + alsoInputs)
        if let spillDir { try OutputChecks.writableDirectory(spillDir, flag: "--spill-dir") }
        let opened = try inputs.open()
        _ = try evaluationRange(count: opened.dataset.count)
        return opened
    }

    /// Images `--eval-offset ..< --eval-offset + --eval-limit` (default: to the end) of a dataset of
    /// `count` images; nil without `--eval-offset`. Out of range is an error naming the flag.
    func evaluationRange(count: Int) throws -> Range<Int>? {
        guard let off = evalOffset else { return nil }
        guard off < count else { throw FlagError("--eval-offset \(off) is outside the \(count) images of \(dataset.data)") }
        guard let limit = evalLimit else { return off..<count }
        guard limit <= count - off else {
            throw FlagError("--eval-limit \(limit) from --eval-offset \(off) needs more than the \(count) images of \(dataset.data) (at most \(count - off))")
        }
        return off..<(off + limit)
    }

    /// The partial-quantization lines of the report: the ops left in float, the most sensitive
    /// probes and the curve.
    static func lines(_ s: SensitivityReport) -> [String] {
        var lines = ["float ops   \(s.floatOps.isEmpty ? "none" : s.floatOps.joined(separator: ", "))"
                     + (s.targetMet == false ? " (target not met within max_float_ops)" : "")]
        if !s.ranking.isEmpty {
            lines.append("sensitive   " + s.ranking.prefix(5).map { String(format: "%@ (KL %.4f, agreement %.3f)", $0.op, $0.kl, $0.agreement) }.joined(separator: ", "))
        }
        if !s.curve.isEmpty {
            lines.append("curve       " + s.curve.map { String(format: "%d float: %.3f", $0.floatOps, $0.agreement) }.joined(separator: ", ") + " agreement on the calibration images")
        }
        return lines
    }

    /// The mixed-precision allocation in a few lines: the averages, and the modules at each width.
    static func lines(_ m: MixedPrecisionReport) -> [String] {
        var lines = [String(format: "mixed bits  %@: average %.3f weight bits, %.3f activation bits (budget %g), Ω %.4g, %d frontier points",
                            m.metric.rawValue, m.result.averageWeightBits, m.result.averageActivationBits, m.budget, m.result.omega, m.result.frontier.count)]
        for b in m.widths {
            let at = m.modules.indices.filter { m.result.bits[$0] == b }.map { m.modules[$0].name }
            if !at.isEmpty { lines.append("  \(b) bits    " + at.joined(separator: ", ")) }
        }
        return lines
    }

    /// Block reconstruction in a few lines: its time, and each unit's loss before and after.
    static func lines(_ units: [UnitReconstructionStats], seconds: Double) -> [String] {
        guard !units.isEmpty else { return [] }
        let iterations = units.reduce(0) { $0 + $1.iterations }
        var lines = [String(format: "reconstruct %.1f s, %d units, %.1f ms per iteration; loss before → after on the calibration images:",
                            seconds, units.count, 1000 * seconds / Double(max(1, iterations)))]
        lines += units.map { String(format: "  %-16@ %.4g → %.4g%@ (%.1f s)", $0.unit, $0.lossBefore, $0.lossAfter, $0.kept ? "" : ", kept the search's", $0.seconds) }
        return lines
    }

    /// Prints the run's report (and, with `--eval-offset`, the accuracy protocol's figures).
    func report(recipe r: Recipe, model fp: any ImageClassifier, dataset ds: ImageDataset, calib: Range<Int>, network: QuantizedNetwork,
                timings: QuantizationTimings, seconds: Double, extra: [String: Any] = [:], extraLines: [String] = []) throws {
        let inSize = try FileManager.default.attributesOfItem(atPath: model)[.size] as? Int ?? 0
        let outSize = try FileManager.default.attributesOfItem(atPath: out)[.size] as? Int ?? 0
        let sha = try SHA256.hex(ofFile: out)
        var obj: [String: Any] = [
            "model": model, "out": out, "recipe": r.name, "calibration_images": calib.count,
            "calibration_offset": calib.lowerBound, "seconds": seconds, "bytes": outSize, "sha256": sha,
            "size_ratio": inSize > 0 ? Double(outSize) / Double(inSize) : 0,
            "collect_seconds": timings.collect, "search_seconds": timings.search,
            "candidate_evaluations": timings.candidateEvaluations, "bytes_spilled": timings.bytesSpilled,
        ]
        if timings.peakResidentBytes > 0 { obj["peak_rss_bytes"] = timings.peakResidentBytes }
        obj.merge(extra) { $1 }
        if !timings.relativeErrors.isEmpty { obj["op_relative_error"] = timings.relativeErrors }
        if let s = timings.sensitivity { obj["partial_quantization"] = s.jsonObject }
        if let m = timings.mixedPrecision { obj["mixed_precision"] = m.jsonObject }
        if let f = timings.calibrationFit { obj["calibration_kl"] = f.kl; obj["calibration_agreement"] = f.agreement }
        if !timings.reconstruction.isEmpty {
            obj["reconstruct_seconds"] = timings.reconstruct
            obj["reconstruction"] = timings.reconstruction.map {
                ["unit": $0.unit, "loss_before": $0.lossBefore, "loss_after": $0.lossAfter, "kept": $0.kept, "sequential": $0.sequential,
                 "binarised": $0.binarised, "iterations": $0.iterations, "seconds": $0.seconds] as [String: Any]
            }
        }
        var lines: [String] = [
            "recipe      \(r.name) (\(r.method))",
            "calibrated  on images \(calib.lowerBound)..<\(calib.upperBound) of \(dataset.data) in \(String(format: "%.1f", seconds)) s",
            String(format: "stages      collect %.1f s, search %.1f s (%d candidate evaluations, %.0f/s)", timings.collect, timings.search,
                   timings.candidateEvaluations, timings.search > 0 ? Double(timings.candidateEvaluations) / timings.search : 0),
        ]
        if timings.peakResidentBytes > 0 || timings.bytesSpilled > 0 {
            lines.append("memory      " + (timings.peakResidentBytes > 0 ? "peak RSS \(ProcessMemory.describe(timings.peakResidentBytes)), " : "")
                         + "stage 1 spilled \(ProcessMemory.describe(timings.bytesSpilled))")
        }
        lines += timings.sensitivity.map(Self.lines) ?? []
        lines += timings.mixedPrecision.map(Self.lines) ?? []
        if let f = timings.calibrationFit { lines.append(String(format: "calib fit   KL %.5f, agreement %.4f on the calibration images", f.kl, f.agreement)) }
        lines += Self.lines(timings.reconstruction, seconds: timings.reconstruct)
        lines += extraLines
        lines += ["wrote       \(out) (\(outSize) bytes, \(String(format: "%.1f", 100 * Double(outSize) / Double(max(inSize, 1))))% of the float file)",
                  "sha256      \(sha)"]
        if let range = try evaluationRange(count: ds.count) {
            // Without labels the comparison with FP32 (agreement, logit cosine) still holds; top-1 and the drop do not.
            let fpResult = try Evaluator.run(model: fp, dataset: ds, range: range, batch: batch, progress: ProgressBar("eval fp32", total: range.count))
            let qResult = try Evaluator.run(model: network.makeModel(.integer), dataset: ds, range: range, batch: batch,
                                            progress: ProgressBar("eval int8", total: range.count))
            let cmp = AccuracyComparison(fp32: fpResult, quantized: qResult)
            let labelled = ds.labels != nil
            obj["eval_images"] = range.count; obj["eval_offset"] = range.lowerBound
            obj["fp32_top1"] = labelled ? fpResult.top1 : NSNull(); obj["top1"] = labelled ? qResult.top1 : NSNull()
            obj["agreement"] = cmp.agreement; obj["drop_points"] = labelled ? cmp.dropPoints : NSNull()
            obj["mean_logit_cosine"] = cmp.meanLogitCosine
            obj["fp32_images_per_second"] = fpResult.imagesPerSecond; obj["int8_images_per_second"] = qResult.imagesPerSecond
            lines.append("evaluated   images \(range.lowerBound)..<\(range.upperBound) (\(range.count))")
            if labelled {
                lines += [String(format: "fp32 top-1  %.4f (%d/%d)", fpResult.top1, fpResult.top1Correct, range.count),
                          String(format: "int8 top-1  %.4f (%d/%d)", qResult.top1, qResult.top1Correct, range.count)]
            } else {
                lines.append("top-1       n/a (no labels)")
            }
            lines += [
                String(format: "agreement   %.4f with FP32 top-1", cmp.agreement),
                String(format: "cosine      %.5f mean of int8 and FP32 logits", cmp.meanLogitCosine),
            ]
            if labelled { lines.append(String(format: "drop        %.2f points", cmp.dropPoints)) }
            lines.append(String(format: "speed       fp32 %.1f images/s, int8 %.1f images/s", fpResult.imagesPerSecond, qResult.imagesPerSecond))
        }
        if json {
            try printJSON(object: obj)
        } else {
            lines.forEach { print($0) }
        }
    }
}

/// One line on stderr, prefixed with the command.
func stderrLine(_ prefix: String) -> @Sendable (String) -> Void {
    { line in FileHandle.standardError.write(Data("\(prefix): \(line)\n".utf8)) }
}
