import Foundation
import VitqData
import VitqFormats
import VitqModels
import VitqQuant
import VitqTensor

/// Where stage 1 keeps its tensors: in memory up to `memoryBudget` bytes, then in unlinked
/// memory-mapped files in `spillDirectory`.
public struct StageOneStorage: Sendable {
    /// The budget all of this process's shards share.
    public let budget: MemoryBudget
    public var spillDirectory: String
    public var memoryBudget: Int { budget.limit }
    /// A line for stderr when stage 1 starts (the budget and why), or nil.
    public var announcement: String?
    public init(memoryBudget: Int = Int.max, spillDirectory: String = NSTemporaryDirectory(), announcement: String? = nil) {
        budget = MemoryBudget(limit: memoryBudget); self.spillDirectory = spillDirectory; self.announcement = announcement
    }

    /// Writes ``announcement`` to stderr (once stage 1 is about to start, so that a run refused
    /// before it prints only the refusal).
    func announce() {
        if let announcement { FileHandle.standardError.write(Data(("vitq: " + announcement + "\n").utf8)) }
    }

    /// The fraction of ``ProcessMemory/available()`` that stage 1 keeps in memory by default.
    public static let defaultFraction = 0.5

    /// The default budget of one of `sharing` processes on this machine: half of what the
    /// machine (or its cgroup) allows, split evenly, and the sentence that says so.
    public static func defaultBudget(sharing: Int = 1) -> (bytes: Int, why: String) {
        let (bytes, source) = ProcessMemory.available()
        let share = Int(Double(bytes) * defaultFraction) / max(1, sharing)
        let split = sharing > 1 ? ", split among \(sharing) workers" : ""
        return (share, "half of the \(ProcessMemory.describe(bytes)) of \(source)\(split)")
    }

    /// The line that reports this storage at the start of a run; `why` explains the budget.
    public func describe(why: String?) -> String {
        "stage 1: memory budget \(ProcessMemory.describe(memoryBudget))" + (why.map { " (\($0); --memory-budget MiB sets it)" } ?? "")
            + ", then spilled to \(spillDirectory)"
    }
}

/// Wall-clock seconds per stage of a quantization run, and stage-2 throughput.
public struct QuantizationTimings: Sendable {
    public var collect = 0.0
    public var search = 0.0
    /// Block reconstruction's seconds, and how each unit went (recipes with `reconstruction`).
    public var reconstruct = 0.0
    public var reconstruction: [UnitReconstructionStats] = []
    public var candidateEvaluations = 0
    public var total = 0.0
    /// Per linear op, ‖ô − o‖/‖o‖ with its final quantizers on FP inputs (search recipes).
    public var relativeErrors: [String: Double] = [:]
    /// What partial quantization measured and chose, when the recipe asks for it.
    public var sensitivity: SensitivityReport?
    /// What the mixed-precision allocation measured and chose, when the recipe asks for one.
    public var mixedPrecision: MixedPrecisionReport?
    /// Method `minmax`: the final network's mean KL from FP32 and top-1 agreement on the calibration images.
    public var calibrationFit: (kl: Double, agreement: Double)?
    /// Stage-1 bytes that went to spill files instead of memory (summed over the shards).
    public var bytesSpilled = 0
    /// The peak resident set size of the process that ran stage 1 (in process: this one).
    public var peakResidentBytes = 0
    public init() {}
}

/// `vitq quantize` as a library call: calibrate a float model on a range of images with a
/// recipe and write the quantized file.
public enum Quantization {
    /// Calibrates `model` (loaded from `modelPath`) on images `calib` of `dataset` and writes the
    /// quantized file to `out`. Returns the quantized network and the time per stage.
    @discardableResult
    public static func run(model: any SearchableModel, modelPath: String, dataset: ImageDataset, calib: Range<Int>,
                           recipe: Recipe, out: String,
                           storage: StageOneStorage = StageOneStorage()) throws -> (network: QuantizedNetwork, timings: QuantizationTimings) {
        let start = Date()
        var t = QuantizationTimings()
        let net: QuantizedNetwork
        let load: (Range<Int>) throws -> Tensor = { try dataset.batch(Array($0), size: model.imageSize) }
        if recipe.method == "search" {
            try BlockReconstruction.check(recipe, model: model)
            let ranges = try SearchCalibration.smoothingRanges(model, recipe: recipe, calib: calib, load: load)
            let model = try SearchCalibration.searchModel(model, recipe: recipe, ranges: ranges)
            storage.announce()
            let collectBar = ProgressBar("stage 1 collect", total: calib.count)
            let scorers = try SearchCalibration.shards(calib, recipe: recipe).map { shard in
                try SearchCalibration.collect(model: model, recipe: recipe, shard: shard, budget: storage.budget,
                                              spillDirectory: storage.spillDirectory, load: load, progress: { collectBar.advance($0) })
            }
            collectBar.finish()
            t.collect = Date().timeIntervalSince(start)
            t.bytesSpilled = scorers.reduce(0) { $0 + $1.store.bytesSpilled }
            let ops = SearchCalibration.ops(model: model, recipe: recipe)
            let searchBar = ProgressBar("stage 2 search", total: SearchCalibration.searchCount(model: model, recipe: recipe))
            let executor = CountingExecutor(LocalExecutor(scorers: scorers))
            let searched = try SearchCalibration.search(model: model, recipe: recipe, executor: executor) {
                searchBar.advance(1, detail: $0.op + ($0.bits.map { " @\($0) bits" } ?? ""))
            }
            searchBar.finish()
            t.mixedPrecision = searched.mixedPrecision
            let (decisions, report) = try SensitivityAnalysis.apply(model: model, recipe: recipe, decisions: searched.decisions, executor: executor,
                                                                    log: { FileHandle.standardError.write(Data(("vitq: " + $0 + "\n").utf8)) })
            let rebuilt = try ReconstructionStage.run(model: model, recipe: recipe, decisions: decisions, stores: scorers.map(\.store))
            t.reconstruction = rebuilt.units
            t.reconstruct = rebuilt.seconds
            net = SearchCalibration.network(model: rebuilt.model, decisions: rebuilt.decisions)
            t.relativeErrors = decisions.compactMapValues(\.relativeError)
            t.sensitivity = report
            t.search = Date().timeIntervalSince(start) - t.collect - t.reconstruct
            t.candidateEvaluations = executor.candidateEvaluations
        } else {
            storage.announce()
            let bar = ProgressBar("calibrate", total: calib.count)
            let result = try MinMaxCalibrator.calibrate(model: model, recipe: recipe, images: calib, budget: storage.budget,
                                                        spillDirectory: storage.spillDirectory, load: load, progress: { bar.advance($0) },
                                                        log: { FileHandle.standardError.write(Data(("vitq: " + $0 + "\n").utf8)) })
            bar.finish()
            net = result.network
            t.sensitivity = result.sensitivity
            t.calibrationFit = result.fit
            t.bytesSpilled = result.bytesSpilled
            t.collect = Date().timeIntervalSince(start)
        }
        let provenance = QModelProvenance(sourceSHA256: try SHA256.hex(ofFile: modelPath),
                                          sourceName: (modelPath as NSString).lastPathComponent, recipeJSON: recipe.canonicalJSON,
                                          partialQuantizationJSON: t.sensitivity?.canonicalJSON, mixedPrecisionJSON: t.mixedPrecision?.canonicalJSON)
        try QModelFile.write(net, provenance: provenance, to: out)
        t.total = Date().timeIntervalSince(start)
        t.peakResidentBytes = ProcessMemory.peakResidentBytes()
        return (net, t)
    }
}
