import Foundation

/// What one calibration costs on this machine per image and per core, measured by
/// ``CostProbe`` on a one-image run of the real stage 1 and stage 2: the inputs of ``CostModel``.
public struct CostProfile: Codable, Sendable, Equatable {
    /// The model file's name, the recipe, and the CPU flags the probe ran on.
    public var model: String, recipe: String, cpu: String
    /// Stage-1 seconds per image on one core (forward and backward, the collection).
    public var stage1SecondsPerImage: Double
    /// Stage-2 seconds per image on one core, over every unit of the search.
    public var stage2SecondsPerImage: Double
    /// The units the search runs (independent of the number of images).
    public var units: Int
    /// The candidates scored over all units.
    public var candidateEvaluations: Int
    /// The bytes of every TASK and of every RESULT of one shard, summed over the units.
    public var taskBytes: Int, resultBytesPerShard: Int
    /// The stage-1 tensors one image leaves in the store.
    public var storedBytesPerImage: Int
    /// The peak RSS above the store during one image's forward and backward (activations the
    /// backward keeps), per image of a shard.
    public var transientBytesPerImage: Int
    /// The RSS of a process that holds the model and nothing else collected yet.
    public var baseBytes: Int
    /// The model file's bytes and one calibration image's bytes as shipped (float32, C·S·S).
    public var modelFileBytes: Int, imageBytes: Int
    /// The recipe's images per shard.
    public var shardImages: Int
    public init(model: String, recipe: String, cpu: String, stage1SecondsPerImage: Double, stage2SecondsPerImage: Double, units: Int,
                candidateEvaluations: Int, taskBytes: Int, resultBytesPerShard: Int, storedBytesPerImage: Int, transientBytesPerImage: Int,
                baseBytes: Int, modelFileBytes: Int, imageBytes: Int, shardImages: Int) {
        self.model = model; self.recipe = recipe; self.cpu = cpu
        self.stage1SecondsPerImage = stage1SecondsPerImage; self.stage2SecondsPerImage = stage2SecondsPerImage
        self.units = units; self.candidateEvaluations = candidateEvaluations
        self.taskBytes = taskBytes; self.resultBytesPerShard = resultBytesPerShard
        self.storedBytesPerImage = storedBytesPerImage; self.transientBytesPerImage = transientBytesPerImage
        self.baseBytes = baseBytes; self.modelFileBytes = modelFileBytes; self.imageBytes = imageBytes; self.shardImages = shardImages
    }

    /// Why the profile cannot be used (a field negative, not finite or beyond any machine), or nil.
    public var problem: String? {
        for (name, v) in [("stage1SecondsPerImage", stage1SecondsPerImage), ("stage2SecondsPerImage", stage2SecondsPerImage)]
            where !(v.isFinite && v >= 0 && v <= 1e9) { return "\(name) \(v) is not a time in 0...1e9 seconds" }
        for (name, v) in [("units", units), ("candidateEvaluations", candidateEvaluations), ("taskBytes", taskBytes),
                          ("resultBytesPerShard", resultBytesPerShard), ("storedBytesPerImage", storedBytesPerImage),
                          ("transientBytesPerImage", transientBytesPerImage), ("baseBytes", baseBytes), ("modelFileBytes", modelFileBytes),
                          ("imageBytes", imageBytes)] where !(0...(1 << 50)).contains(v) { return "\(name) \(v) is outside 0...2^50" }
        if !(1...100_000).contains(shardImages) { return "shardImages \(shardImages) is outside 1...100000" }
        return nil
    }
}
