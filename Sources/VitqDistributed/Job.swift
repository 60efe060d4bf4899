import Foundation

/// How a worker gets a file (the model or the calibration images): the bytes in a JOB frame,
/// or a path on its own file system. Either way it checks the sha256 before use.
public enum Delivery: Equatable, Sendable, Codable {
    /// The bytes are binary frame `frame` (2 or 3) of the JOB message.
    case inline(frame: Int, sha256: String)
    /// The worker reads `path`.
    case path(path: String, sha256: String)

    /// The expected sha256, 64 lowercase hex digits.
    public var sha256: String {
        switch self {
        case let .inline(_, h), let .path(_, h): return h
        }
    }
}

/// A shard: the images `lower..<upper` of the calibration set. Encoded as `[lower, upper]`.
public struct ShardRange: Equatable, Sendable, Codable {
    public var lower: Int
    public var upper: Int
    public init(_ r: Range<Int>) { lower = r.lowerBound; upper = r.upperBound }
    /// The image indices.
    public var range: Range<Int> { lower..<max(lower, upper) }

    public init(from decoder: Decoder) throws {
        var c = try decoder.unkeyedContainer()
        lower = try c.decode(Int.self); upper = try c.decode(Int.self)
        guard c.isAtEnd else { throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath, debugDescription: "a shard is [lower, upper]")) }
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.unkeyedContainer()
        try c.encode(lower); try c.encode(upper)
    }
}

/// A model's architecture as the coordinator resolved it: its family's registry name (`vit`,
/// `swin`) and the family's spec JSON (what a quantized file's `model` metadata holds). The
/// worker builds the model from it; the model file need not carry a config.
public struct JobModelSpec: Equatable, Sendable, Codable {
    public var family: String
    public var spec: String
    public init(family: String, spec: String) { self.family = family; self.spec = spec }
}

/// What a worker needs to take part in a run: the model and its spec, the images, the recipe,
/// the fixed shards and the heartbeat settings.
public struct Job: Equatable, Sendable, Codable {
    public var model: Delivery
    /// A float32 `.npy` of the preprocessed calibration images, [N, 3, S, S]; row 0 is image
    /// `imageOffset`, so shard ranges (absolute image indices) map to rows by subtracting it.
    public var images: Delivery
    /// The image index of the images file's first row.
    public var imageOffset: Int
    /// The model's family and resolved spec (`--arch`, `--heads` and the file's config applied).
    public var modelSpec: JobModelSpec
    /// With the recipe's `smooth_alpha` or `gelu_smooth_alpha`, each smoothed op's per-channel
    /// input range (k minima, then k maxima), measured once by the coordinator
    /// (`SearchCalibration.smoothingRanges`); workers smooth the model with them.
    public var smoothingRanges: [String: [Float]]?
    /// The recipe text (`Recipe.parse`).
    public var recipe: String
    /// The fixed shards, ascending and non-overlapping (`SearchCalibration.shards`).
    public var shards: [ShardRange]
    /// Heartbeat interval in seconds (default 1).
    public var heartbeat: Double
    /// Missed heartbeats before a peer is dead (default 3).
    public var liveness: Int

    public init(model: Delivery, modelSpec: JobModelSpec, images: Delivery, imageOffset: Int = 0,
                smoothingRanges: [String: [Float]]? = nil, recipe: String, shards: [ShardRange], heartbeat: Double = 1, liveness: Int = 3) {
        self.model = model; self.modelSpec = modelSpec; self.images = images; self.imageOffset = imageOffset
        self.smoothingRanges = smoothingRanges
        self.recipe = recipe; self.shards = shards
        self.heartbeat = heartbeat; self.liveness = liveness
    }
}
