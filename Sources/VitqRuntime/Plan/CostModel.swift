import Foundation

/// Predicts a calibration's wall time, CPU time, per-worker memory and bytes on the wire from
/// a ``CostProfile`` (Docs/BENCHMARKS.md, "Cost model", compares it with measured runs).
///
/// The model follows how vitq runs: images are cut into shards of `shardImages`; shards are
/// spread evenly over the workers, which run stage 1 for their shards one after another and
/// then every unit of the search, one unit at a time (a worker's compute thread is serial),
/// each shard's images in parallel over the worker's cores. So a worker's wall time is its
/// images' one-core cost divided by the cores its shards can use, and the slowest worker sets
/// the run's time. With `workers == 0` the run is in process: one "worker" holds every shard.
public enum CostModel {
    /// One predicted run.
    public struct Prediction: Codable, Sendable, Equatable {
        public var images: Int, workers: Int, coresPerWorker: Int, shards: Int
        public var stage1Seconds: Double, stage2Seconds: Double, wallSeconds: Double
        public var cpuSeconds: Double
        /// The peak RSS of the busiest worker (the in-process run's, with no workers).
        public var peakBytesPerWorker: Int
        /// Stage-1 bytes the busiest worker spills beyond the memory budget.
        public var spilledBytesPerWorker: Int
        /// Every JOB, TASK and RESULT on the wire.
        public var wireBytes: Int
    }

    /// The prediction for `images` calibration images on `workers` workers (0: in process) of
    /// `cores` cores each, with stage 1 kept in memory up to `budget` bytes per worker. With
    /// `sharedCores`, the workers run on one machine of that many cores (`quantize --workers`):
    /// when the busy workers' threads outnumber them, everything slows down by the ratio.
    public static func predict(_ p: CostProfile, images: Int, workers: Int, cores: Int, budget: Int = Int.max,
                               sharedCores: Int? = nil) -> Prediction {
        let s = max(1, p.shardImages), n = max(0, images), c = max(1, cores)
        let shards = (n + s - 1) / s
        let busiest = (shards + max(1, workers) - 1) / max(1, workers)             // shards of the busiest worker
        let lastShard = n - (shards - 1) * s                                          // images of the last, smaller shard
        // The busiest worker's images, and the time its cores take for them: a shard's images
        // run in parallel, at most `c` at a time.
        let heldImages = shards == 0 ? 0 : min(n, busiest * s)
        func rounds(_ imagesInShard: Int) -> Double { Double((imagesInShard + c - 1) / c) }
        let shardRounds = shards == 0 ? 0 : Double(busiest - 1) * rounds(s) + rounds(busiest == shards ? lastShard : s)
        // Stage 1 runs a shard as one batch, its products split over the cores.
        let busy = min(max(1, workers), max(1, shards))                              // workers that hold a shard
        let oversubscribed = sharedCores.map { max(1, Double(busy * c) / Double(max(1, $0))) } ?? 1
        let stage1 = Double(heldImages) * p.stage1SecondsPerImage / Double(min(c, max(1, heldImages))) * oversubscribed
        let stage2 = shardRounds * p.stage2SecondsPerImage * oversubscribed
        // Byte counts saturate (a profile's sizes are at most 2⁵⁰, images and workers at most 2³⁰).
        let stored = mul(p.storedBytesPerImage, heldImages)
        let inMemory = min(stored, budget)
        let peak = add(add(p.baseBytes, inMemory), mul(p.transientBytesPerImage, min(s, n)))
        let jobs = mul(max(1, workers), add(p.modelFileBytes, mul(n, p.imageBytes)))
        let wire = workers == 0 ? 0 : add(jobs, mul(add(p.taskBytes, p.resultBytesPerShard), shards))
        return Prediction(images: n, workers: workers, coresPerWorker: c, shards: shards,
                          stage1Seconds: stage1, stage2Seconds: stage2, wallSeconds: stage1 + stage2,
                          cpuSeconds: Double(n) * (p.stage1SecondsPerImage + p.stage2SecondsPerImage),
                          peakBytesPerWorker: peak, spilledBytesPerWorker: stored - inMemory, wireBytes: wire)
    }

    private static func mul(_ a: Int, _ b: Int) -> Int { let (r, o) = a.multipliedReportingOverflow(by: b); return o ? .max : r }
    private static func add(_ a: Int, _ b: Int) -> Int { let (r, o) = a.addingReportingOverflow(b); return o ? .max : r }
}
