import Foundation
import VitqDistributed
import VitqModels
import VitqQuant
import VitqTensor

/// Measures a ``CostProfile`` on this machine, on one core: the real stage 1 of `recipe` on one
/// shard of seeded random images (at most 8), and its real search on one image, each unit
/// timed and its TASK and RESULT encoded as they would go on the wire. Takes about one shard's
/// stage 1 and one image's search.
public enum CostProbe {
    public static func measure(model: any SearchableModel, modelPath: String, recipe: Recipe,
                               spillDirectory: String = NSTemporaryDirectory()) throws -> CostProfile {
        let saved = Parallel.threads
        Parallel.threads = 1
        defer { Parallel.threads = saved }
        let size = model.imageSize
        // Stage 1 runs a whole shard as one batch, so it is timed on one shard's worth of images
        // (at most 8); the search's cost is linear in the images, so it runs on one.
        let batch = min(max(1, recipe.shardImages), 8)
        var rng = SeededRandom(seed: 1)
        let images = Tensor(zeros: [batch, 3, size, size])
        for i in 0..<images.count { images.data[i] = Float(rng.normal()) }
        let load: (Range<Int>) throws -> Tensor = { r in images.slice(r) }

        let ranges = recipe.method == "search" ? try SearchCalibration.smoothingRanges(model, recipe: recipe, calib: 0..<batch, load: load) : nil
        let searchModel = recipe.method == "search" ? try SearchCalibration.searchModel(model, recipe: recipe, ranges: ranges) : model
        let base = ProcessMemory.residentBytes()
        ProcessMemory.resetPeak()
        let t0 = Date()
        let shard = try SearchCalibration.collect(model: searchModel, recipe: recipe, shard: 0..<batch, budget: MemoryBudget(),
                                                  spillDirectory: spillDirectory, load: load)
        let stage1 = Date().timeIntervalSince(t0) / Double(batch)
        let stored = (shard.store.bytesInMemory + shard.store.bytesSpilled) / batch
        let transient = max(0, ProcessMemory.peakResidentBytes() - base - stored * batch) / batch
        let scorer = try SearchCalibration.collect(model: searchModel, recipe: recipe, shard: 0..<1, budget: MemoryBudget(),
                                                   spillDirectory: spillDirectory, load: load)

        let timer = TimingExecutor(LocalExecutor(scorers: [scorer]))
        if recipe.method == "search" {
            let searched = try SearchCalibration.search(model: searchModel, recipe: recipe, executor: timer)
            _ = try SensitivityAnalysis.apply(model: searchModel, recipe: recipe, decisions: searched.decisions, executor: timer)
        } else {
            let decided = try RangeCalibration.decisions(model: searchModel, recipe: recipe, executor: timer)
            let (decisions, _) = try SensitivityAnalysis.apply(model: searchModel, recipe: recipe, decisions: decided, executor: timer)
            _ = try SensitivityAnalysis.fit(decisions, executor: timer)
        }
        let fileBytes = (try? FileManager.default.attributesOfItem(atPath: modelPath)[.size] as? Int) ?? 0
        return CostProfile(model: (modelPath as NSString).lastPathComponent, recipe: recipe.name, cpu: BuildInfo.cpuFlags.joined(separator: ","),
                           stage1SecondsPerImage: stage1, stage2SecondsPerImage: timer.seconds, units: timer.units,
                           candidateEvaluations: timer.candidates, taskBytes: timer.taskBytes, resultBytesPerShard: timer.resultBytes,
                           storedBytesPerImage: stored, transientBytesPerImage: transient, baseBytes: base,
                           modelFileBytes: fileBytes, imageBytes: 3 * size * size * MemoryLayout<Float>.size, shardImages: recipe.shardImages)
    }
}

/// Times each unit through an executor and adds up the bytes its TASK and RESULT would take
/// on the wire (encoded by the protocol's codec, one shard).
final class TimingExecutor: SearchExecutor {
    let inner: SearchExecutor
    private let codec = MessageCodec(shardCount: 1)
    private let lock = NSLock()
    private(set) var seconds = 0.0, units = 0, candidates = 0, taskBytes = 0, resultBytes = 0
    init(_ inner: SearchExecutor) { self.inner = inner }

    func run(_ unit: WorkUnit) throws -> WorkResult {
        let t0 = Date()
        let result = try inner.run(unit)
        let dt = Date().timeIntervalSince(t0)
        let task = (try? codec.encode(.task(WorkTask(request: 0, shard: 0, attempt: 0, unit: unit))))?.reduce(0) { $0 + $1.count } ?? 0
        let reply = (try? codec.encode(.result(WorkReply(request: 0, shard: 0, attempt: 0, result: result))))?.reduce(0) { $0 + $1.count } ?? 0
        lock.withLock {
            seconds += dt; units += 1; taskBytes += task; resultBytes += reply
            if case let .score(t) = unit { candidates += t.candidates.count }
        }
        return result
    }
}
