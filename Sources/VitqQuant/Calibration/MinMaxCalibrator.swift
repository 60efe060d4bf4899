import Foundation
import VitqModels
import VitqTensor

/// Method `minmax` in one process, for a model of any family: stage 1 (the forward alone) over
/// fixed shards of the recipe's `shard_images`, then ``RangeCalibration`` and
/// ``SensitivityAnalysis`` through a ``LocalExecutor``, the code workers run for a coordinator.
/// So the result is the same bits as a distributed run, whatever the batch the images came in.
public final class MinMaxCalibrator {
    public let model: any SearchableModel
    public let recipe: Recipe
    private var batches: [Tensor] = []

    public init(model: any SearchableModel, recipe: Recipe) {
        self.model = model; self.recipe = recipe
    }

    /// Keeps one batch of normalised images [B, C, H, W] for calibration.
    public func observe(_ images: Tensor) { batches.append(images) }

    /// The quantized network calibrated on every image observed, in order.
    public func finish() throws -> QuantizedNetwork {
        let n = batches.reduce(0) { $0 + $1.shape[0] }
        guard let first = batches.first else { throw SearchExecutorError(description: "minmax calibration: no images observed") }
        let all = Tensor(zeros: [n] + Array(first.shape.dropFirst()))
        var offset = 0
        for b in batches { (all.data + offset).update(from: b.data, count: b.count); offset += b.count }
        return try Self.calibrate(model: model, recipe: recipe, images: 0..<n) { r in
            all.slice(r)
        }.network
    }

    /// Calibrates `model` on `images` read with `load`: the network, the partial-quantization
    /// report when the recipe asks for one, the network's fit to FP32 on those images and the
    /// stage-1 bytes that went to spill files.
    public static func calibrate(model: any SearchableModel, recipe: Recipe, images: Range<Int>,
                                 budget: MemoryBudget = MemoryBudget(), spillDirectory: String = NSTemporaryDirectory(),
                                 load: (Range<Int>) throws -> Tensor, progress: ((Int) -> Void)? = nil,
                                 log: (@Sendable (String) -> Void)? = nil) throws -> (network: QuantizedNetwork, sensitivity: SensitivityReport?,
                                                                            fit: (kl: Double, agreement: Double), bytesSpilled: Int) {
        let scorers = try SearchCalibration.shards(images, recipe: recipe).map { shard in
            try SearchCalibration.collect(model: model, recipe: recipe, shard: shard, budget: budget,
                                          spillDirectory: spillDirectory, load: load, progress: progress)
        }
        let executor = LocalExecutor(scorers: scorers)
        let decided = try RangeCalibration.decisions(model: model, recipe: recipe, executor: executor)
        let (decisions, report) = try SensitivityAnalysis.apply(model: model, recipe: recipe, decisions: decided, executor: executor, log: log)
        return (SearchCalibration.network(model: model, decisions: decisions), report, try SensitivityAnalysis.fit(decisions, executor: executor),
                scorers.reduce(0) { $0 + $1.store.bytesSpilled })
    }
}
