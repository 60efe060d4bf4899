import Foundation

/// The architecture of a timm `SwinTransformer` (timm ≥ 0.9 layout: patch merging at the start
/// of stages 1…3, `head.fc`).
public struct SwinConfig: Codable, Equatable, Sendable {
    public var imgSize = 224
    public var patchSize = 4
    public var inChans = 3
    public var windowSize = 7
    public var embedDim = 96
    /// Blocks per stage.
    public var depths = [2, 2, 6, 2]
    /// Attention heads per stage.
    public var numHeads = [3, 6, 12, 24]
    public var mlpRatio = 4.0
    public var numClasses = 1000
    public var layerNormEps: Float = 1e-5

    public init() {}

    /// The number of stages.
    public var stages: Int { depths.count }
    /// Channels of stage s (doubling at each patch merging).
    public func dim(_ s: Int) -> Int { embedDim << s }
    /// Side of the token grid of stage s.
    public func resolution(_ s: Int) -> Int { (imgSize / patchSize) >> s }
    /// The window side of stage s: the window, or the whole grid when it is smaller (timm).
    public func window(_ s: Int) -> Int { min(windowSize, resolution(s)) }
    /// The cyclic shift of block b of stage s: half a window on odd blocks, none when one
    /// window covers the grid (timm's `_calc_window_shift`).
    public func shift(_ s: Int, block b: Int) -> Int { b % 2 == 1 && resolution(s) > windowSize ? windowSize / 2 : 0 }
    /// The MLP width of stage s.
    public func mlpHidden(_ s: Int) -> Int { Int(Double(dim(s)) * mlpRatio) }

    /// The stored shape of linear op `name`'s weight: the patch projection keeps its conv shape.
    public func weightShape(_ name: String, out: Int, in inF: Int) -> [Int] {
        name == "patch_embed.proj" ? [embedDim, inChans, patchSize, patchSize] : [out, inF]
    }

    /// The keys of timm's SwinTransformer constructor that vitq understands.
    static let keys: Set<String> = ["img_size", "patch_size", "in_chans", "window_size", "embed_dim", "depths", "num_heads",
                                    "mlp_ratio", "num_classes"]

    /// The config in a timm constructor-argument object; unknown keys are errors naming `source`.
    public init(timmConfig c: [String: Any], source: String) throws {
        for k in c.keys where !Self.keys.contains(k) {
            throw ModelError.badConfig(source: source, key: k, detail: "not a SwinTransformer argument vitq understands")
        }
        func int(_ k: String) throws -> Int? {
            guard let v = c[k] else { return nil }
            guard let i = v as? Int, i > 0 else { throw ModelError.badConfig(source: source, key: k, detail: "expected a positive integer") }
            return i
        }
        func ints(_ k: String) throws -> [Int]? {
            guard let v = c[k] else { return nil }
            guard let a = v as? [Int], !a.isEmpty, a.allSatisfy({ $0 > 0 }) else {
                throw ModelError.badConfig(source: source, key: k, detail: "expected a list of positive integers")
            }
            return a
        }
        if let v = try int("img_size") { imgSize = v }
        if let v = try int("patch_size") { patchSize = v }
        if let v = try int("in_chans") { inChans = v }
        if let v = try int("window_size") { windowSize = v }
        if let v = try int("embed_dim") { embedDim = v }
        if let v = try int("num_classes") { numClasses = v }
        if let v = try ints("depths") { depths = v }
        if let v = try ints("num_heads") { numHeads = v }
        if let v = c["mlp_ratio"] {
            guard let r = v as? Double, r > 0 else { throw ModelError.badConfig(source: source, key: "mlp_ratio", detail: "expected a positive number") }
            mlpRatio = r
        }
        try validate(source: source)
    }

    /// Checks that the dimensions fit together (`source` names where they came from).
    public func validate(source: String) throws {
        for (k, v) in [("img_size", imgSize), ("patch_size", patchSize), ("in_chans", inChans), ("window_size", windowSize),
                       ("embed_dim", embedDim), ("num_classes", numClasses)] where v <= 0 {
            throw ModelError.badConfig(source: source, key: k, detail: "expected a positive integer")
        }
        guard !depths.isEmpty, depths.allSatisfy({ $0 > 0 }), numHeads.allSatisfy({ $0 > 0 }), mlpRatio > 0, layerNormEps > 0 else {
            throw ModelError.badConfig(source: source, key: "depths", detail: "depths, num_heads, mlp_ratio and eps must be positive")
        }
        guard depths.count == numHeads.count else {
            throw ModelError.badConfig(source: source, key: "num_heads", detail: "\(numHeads.count) entries for \(depths.count) stages")
        }
        for s in 0..<stages where dim(s) % numHeads[s] != 0 {
            throw ModelError.badConfig(source: source, key: "num_heads", detail: "stage \(s): \(dim(s)) channels do not split into \(numHeads[s]) heads")
        }
        for s in 0..<stages where resolution(s) == 0 || resolution(s) % window(s) != 0 || (resolution(s) << s) * patchSize != imgSize {
            throw ModelError.badConfig(source: source, key: "window_size", detail: "stage \(s): a \(resolution(s))-token grid does not tile into \(window(s))-token windows")
        }
    }
}
