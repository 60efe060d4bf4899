import Foundation
import VitqData
import VitqFormats
import VitqModels
import VitqQuant
import VitqTensor

/// Where stage 1 keeps its tensors: in memory up to `memoryBudget` bytes, then in unlinked
/// memory-mapped files in `spillDirectory`.
public struct StageOneStorage: Sendable {
    public var memoryBudget: Int
    public var spillDirectory: String
    public init(memoryBudget: Int = Int.max, spillDirectory: String = NSTemporaryDirectory()) {
        self.memoryBudget = memoryBudget; self.spillDirectory = spillDirectory
    }
}

/// Wall-clock seconds per stage of a quantization run, and stage-2 throughput.
public struct QuantizationTimings: Sendable {
    public var collect = 0.0
    public var search = 0.0
    public var candidateEvaluations = 0
    public var total = 0.0
    /// Per linear op, ‖ô − o‖/‖o‖ with its final quantizers on FP inputs (search recipes).
    public var relativeErrors: [String: Double] = [:]
    public init() {}
}

/// `vitq quantize` as a library call: calibrate a float model on a range of images with a
/// recipe and write the quantized file.
public enum Quantization {
    /// Calibrates `model` (loaded from `modelPath`) on images `calib` of `dataset` and writes the
    /// quantized file to `out`. Returns the quantized network and the time per stage.
    @discardableResult
    public static func run(model: any SearchableModel, modelPath: String, dataset: ImageDataset, calib: Range<Int>,
                           recipe: Recipe, batch: Int, out: String,
                           storage: StageOneStorage = StageOneStorage()) throws -> (network: QuantizedModel, timings: QuantizationTimings) {
        let start = Date()
        var t = QuantizationTimings()
        let net: QuantizedModel
        let load: (Range<Int>) throws -> Tensor = { try dataset.batch(Array($0), size: model.imageSize) }
        if recipe.method == "search" {
            let ranges = try SearchCalibration.smoothingRanges(model, recipe: recipe, calib: calib, load: load)
            let model = try SearchCalibration.searchModel(model, recipe: recipe, ranges: ranges)
            let collectBar = ProgressBar("stage 1 collect", total: calib.count)
            let scorers = try SearchCalibration.shards(calib, recipe: recipe).map { shard in
                try SearchCalibration.collect(model: model, recipe: recipe, shard: shard, memoryBudget: storage.memoryBudget,
                                              spillDirectory: storage.spillDirectory, load: load, progress: { collectBar.advance($0) })
            }
            collectBar.finish()
            t.collect = Date().timeIntervalSince(start)
            let ops = SearchCalibration.ops(model: model, recipe: recipe)
            let searchBar = ProgressBar("stage 2 search", total: ops.count)
            let executor = CountingExecutor(LocalExecutor(scorers: scorers))
            let decisions = try SearchCalibration.search(model: model, recipe: recipe, executor: executor) { searchBar.advance(1, detail: $0.op) }
            searchBar.finish()
            net = SearchCalibration.network(model: model, recipe: recipe, decisions: decisions)
            t.relativeErrors = decisions.compactMapValues(\.relativeError)
            t.search = Date().timeIntervalSince(start) - t.collect
            t.candidateEvaluations = executor.candidateEvaluations
        } else {
            let observe: (Tensor) -> Void, finish: () -> QuantizedModel
            switch model {
            case let vit as VisionTransformer:
                let c = MinMaxCalibrator(model: vit, recipe: recipe)
                observe = c.observe; finish = { .vit(c.finish()) }
            case let swin as SwinTransformer:
                let c = SwinMinMaxCalibrator(model: swin, recipe: recipe)
                observe = c.observe; finish = { .swin(c.finish()) }
            default:
                preconditionFailure("no max calibrator for \(type(of: model))")
            }
            let bar = ProgressBar("calibrate", total: calib.count)
            var lo = calib.lowerBound
            while lo < calib.upperBound {
                let hi = min(lo + batch, calib.upperBound)
                observe(try load(lo..<hi))
                bar.advance(hi - lo)
                lo = hi
            }
            bar.finish()
            net = finish()
            t.collect = Date().timeIntervalSince(start)
        }
        let provenance = QModelProvenance(sourceSHA256: try SHA256.hex(ofFile: modelPath),
                                          sourceName: (modelPath as NSString).lastPathComponent, recipeJSON: recipe.canonicalJSON)
        try QModelFile.write(net, provenance: provenance, to: out)
        t.total = Date().timeIntervalSince(start)
        return (net, t)
    }
}

/// Counts candidate evaluations (candidates × images) passing through an executor.
final class CountingExecutor: SearchExecutor {
    let inner: SearchExecutor
    private(set) var candidateEvaluations = 0
    init(_ inner: SearchExecutor) { self.inner = inner }
    var shardCount: Int { inner.shardCount }
    func ranges(_ op: String) throws -> [[Float]] { try inner.ranges(op) }
    func score(_ task: SearchTask) throws -> [ShardScores] {
        candidateEvaluations += task.candidates.count
        return try inner.score(task)
    }
    func outputError(_ task: OutputErrorTask) throws -> [OutputErrorSums] { try inner.outputError(task) }
}

/// The accuracy protocol's report: the quantized model against FP32 on the same images.
public struct AccuracyComparison: Sendable {
    public var fp32: EvalResult
    public var quantized: EvalResult

    public init(fp32: EvalResult, quantized: EvalResult) { self.fp32 = fp32; self.quantized = quantized }

    /// Fraction of images whose top-1 class equals FP32's.
    public var agreement: Double {
        let n = fp32.images, c = fp32.classes
        guard n > 0 else { return 0 }
        var same = 0
        for i in 0..<n where Self.argmax(fp32.logits, i, c) == Self.argmax(quantized.logits, i, c) { same += 1 }
        return Double(same) / Double(n)
    }

    /// The mean over images of the cosine similarity of quantized and FP32 logits.
    public var meanLogitCosine: Double {
        let n = fp32.images, c = fp32.classes
        guard n > 0 else { return 0 }
        var total = 0.0
        for i in 0..<n {
            var dot = 0.0, a2 = 0.0, b2 = 0.0
            for j in (i * c)..<((i + 1) * c) {
                let a = Double(fp32.logits[j]), b = Double(quantized.logits[j])
                dot += a * b; a2 += a * a; b2 += b * b
            }
            total += a2 > 0 && b2 > 0 ? dot / (a2.squareRoot() * b2.squareRoot()) : 0
        }
        return total / Double(n)
    }

    /// FP32 top-1 minus quantized top-1, in percentage points.
    public var dropPoints: Double { (fp32.top1 - quantized.top1) * 100 }

    static func argmax(_ l: [Float], _ i: Int, _ c: Int) -> Int {
        var best = 0
        for j in 1..<c where l[i * c + j] > l[i * c + best] { best = j }
        return best
    }
}
