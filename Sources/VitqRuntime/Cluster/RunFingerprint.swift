import Foundation
import VitqDistributed
import VitqFormats
import VitqModels

/// The journal's name for a run: a sha256 over everything the result depends on, so that
/// `--resume` never mixes decisions of two different runs. It covers the JOB the workers get
/// (model and images sha256 — the images are preprocessed, so the data, the calibration range
/// and the mean/std/crop are in it —, image offset, the model's family and resolved spec, the
/// smoothing ranges, the recipe text and the shards) and every model override besides; only
/// how the bytes travel (inline or path) and the heartbeat settings are left out. The version
/// changes with what is hashed, so a journal of an older layout is refused rather than mixed.
enum RunFingerprint {
    /// What is hashed (JSON with sorted keys; version 3 of the fingerprint: the JOB's model spec).
    struct Content: Encodable {
        var version = 3
        var model: String
        var images: String
        var imageOffset: Int
        var arch: String?
        var heads: Int?
        var mean: [Float]?
        var std: [Float]?
        var cropPct: Double?
        var modelSpec: JobModelSpec
        var smoothingRanges: [String: [Float]]?
        var recipe: String
        var shards: [ShardRange]
    }

    /// The fingerprint of `job` made with `overrides`.
    static func of(_ job: Job, overrides: ModelOverrides) throws -> String {
        let content = Content(model: job.model.sha256, images: job.images.sha256, imageOffset: job.imageOffset,
                              arch: overrides.arch, heads: overrides.numHeads, mean: overrides.mean, std: overrides.std,
                              cropPct: overrides.cropPct, modelSpec: job.modelSpec, smoothingRanges: job.smoothingRanges,
                              recipe: job.recipe, shards: job.shards)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var h = SHA256()
        h.update(try encoder.encode(content))
        return h.finalizeHex()
    }
}
