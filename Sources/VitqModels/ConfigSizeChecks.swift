import Foundation
import VitqData
import VitqFormats

/// Checks on the sizes a model config implies, made before anything is allocated or indexed
/// from them. A config read from a file (a quantized file's `model` metadata, a sidecar JSON)
/// can hold any integers: every product is computed with overflow checks, every tensor it
/// implies must fit in the file, and loops over blocks are bounded by the file's tensor count.
extension ViTConfig {
    /// Throws ``ModelError/badConfig(source:key:detail:)`` naming the key (the `model`
    /// metadata's field names) when a dimension is not positive, the image does not tile into
    /// patches, the depth needs more tensors than the file has (`tensorCount`), or a tensor the
    /// config implies would overflow or exceed the `fileBytes`-byte file.
    public func checkSizes(source: String, fileBytes: Int, tensorCount: Int) throws {
        func bad(_ key: String, _ detail: String) -> ModelError { .badConfig(source: source, key: key, detail: detail) }
        for (k, v) in [("imgSize", imgSize), ("patchSize", patchSize), ("inChans", inChans), ("embedDim", embedDim),
                       ("depth", depth), ("numHeads", numHeads), ("mlpHidden", mlpHidden), ("numClasses", numClasses)] where v < 1 {
            throw bad(k, "must be a positive integer, got \(v)")
        }
        guard layerNormEps.isFinite, layerNormEps > 0 else { throw bad("layerNormEps", "must be a positive finite number, got \(layerNormEps)") }
        guard imgSize % patchSize == 0 else { throw bad("imgSize", "\(imgSize) is not a multiple of patchSize \(patchSize)") }
        guard embedDim % numHeads == 0 else { throw bad("numHeads", "\(numHeads) does not divide embedDim \(embedDim)") }
        // Each block has at least its two norms' weights and biases.
        guard depth <= tensorCount / 4 + 1 else { throw bad("depth", "\(depth) blocks need more tensors than the file's \(tensorCount)") }
        let grid = imgSize / patchSize
        guard let patches = CheckedSize.product([grid, grid]), let tokens = CheckedSize.sum([patches, prefixTokens]) else {
            throw bad("imgSize", "a \(grid)×\(grid) patch grid overflows the token count")
        }
        let implied: [(key: String, tensor: String, shape: [Int])] = [
            ("imgSize", "pos_embed", [1, tokens, embedDim]),
            ("inChans", "patch_embed.proj.weight", [embedDim, inChans, patchSize, patchSize]),
            ("embedDim", "blocks.0.attn.qkv.weight", [3, embedDim, embedDim]),
            ("mlpHidden", "blocks.0.mlp.fc1.weight", [mlpHidden, embedDim]),
            ("numClasses", "head.weight", [numClasses, embedDim]),
        ]
        for t in implied {
            guard let n = CheckedSize.product(t.shape), n <= fileBytes else {
                throw bad(t.key, "implies tensor '\(t.tensor)' of shape \(t.shape), larger than the \(fileBytes)-byte file")
            }
        }
    }
}

extension SwinConfig {
    /// The most stages a Swin config may have (timm's have 4); channels double at each.
    public static let maxStages = 16

    /// The sizes of ``validate(source:)`` with overflow checks: throws when a width, weight or
    /// attention-score term overflows, a weight exceeds the `fileBytes`-byte file, there are more
    /// blocks than the file's `tensorCount` allows, or the attention-score terms (relative
    /// position bias plus shift mask, built once per block) would need more than half the
    /// machine's memory.
    public func checkSizes(source: String, fileBytes: Int, tensorCount: Int) throws {
        func bad(_ key: String, _ detail: String) -> ModelError { .badConfig(source: source, key: key, detail: detail) }
        guard stages >= 1, stages <= Self.maxStages else { throw bad("depths", "\(stages) stages; 1 to \(Self.maxStages)") }
        guard numHeads.count == stages, numHeads.allSatisfy({ $0 >= 1 }), depths.allSatisfy({ $0 >= 1 }) else {
            throw bad("num_heads", "\(numHeads.count) head counts for \(stages) stages; each count and depth must be positive")
        }
        for (k, v) in [("img_size", imgSize), ("patch_size", patchSize), ("in_chans", inChans), ("window_size", windowSize),
                       ("embed_dim", embedDim), ("num_classes", numClasses)] where v < 1 {
            throw bad(k, "must be a positive integer, got \(v)")
        }
        guard let blocks = CheckedSize.sum(depths), blocks <= tensorCount / 4 + 1 else {
            throw bad("depths", "\(depths) blocks need more tensors than the file's \(tensorCount)")
        }
        func fits(_ key: String, _ tensor: String, _ shape: [Int]) throws {
            guard let n = CheckedSize.product(shape), n <= fileBytes else {
                throw bad(key, "implies tensor '\(tensor)' of shape \(shape), larger than the \(fileBytes)-byte file")
            }
        }
        try fits("in_chans", "patch_embed.proj.weight", [embedDim, inChans, patchSize, patchSize])
        let budget = Int(min(ProcessInfo.processInfo.physicalMemory / 2, UInt64(Int.max)))
        var scoreBytes = 0
        for s in 0..<stages {
            guard let d = CheckedSize.product([embedDim, 1 << s]), CheckedSize.product([d, 8]) != nil else {
                throw bad("embed_dim", "stage \(s)'s width overflows")
            }
            if s > 0 { try fits("embed_dim", "layers.\(s).downsample.reduction.weight", [d, 2 * d]) }
            try fits("embed_dim", "layers.\(s).blocks.0.attn.qkv.weight", [3, d, d])
            let hidden = Double(d) * mlpRatio
            guard hidden.isFinite, hidden < Double(1 << 40) else { throw bad("mlp_ratio", "stage \(s)'s MLP width \(hidden) overflows") }
            try fits("mlp_ratio", "layers.\(s).blocks.0.mlp.fc1.weight", [Int(hidden), d])
            let r = resolution(s), w = window(s)
            // [windows, heads, w², w²] = [r², heads, w²] floats per shifted block (twice: the
            // mask and the sum), [heads, w², w²] otherwise; w ≤ r, so this also bounds w.
            guard let perBlock = CheckedSize.product([r, r, numHeads[s], w, w, 4 * 2]),
                  let stage = CheckedSize.product([perBlock, depths[s]]),
                  let total = CheckedSize.sum([scoreBytes, stage]), total <= budget else {
                throw bad("img_size", "stage \(s)'s attention-score terms need more than \(budget) bytes, half of this machine's memory")
            }
            scoreBytes = total
            try fits("window_size", "layers.\(s).blocks.0.attn.relative_position_bias_table", [2 * w - 1, 2 * w - 1, numHeads[s]])
        }
        try fits("num_classes", "head.fc.weight", [numClasses, embedDim << (stages - 1)])
    }
}

extension PreprocessConfig {
    /// Throws ``ModelError/badConfig(source:key:detail:)`` naming the key unless this transform
    /// can feed a model with `imageSize`-square inputs of `channels` channels: vitq's image
    /// pipeline is RGB (3 channels), the crop is the model's input size, mean and std are 3
    /// finite numbers each with std > 0, crop_pct is in (0, 1], and the resize is bicubic.
    public func validate(source: String, channels: Int, imageSize: Int) throws {
        func bad(_ key: String, _ detail: String) -> ModelError { .badConfig(source: source, key: key, detail: detail) }
        guard channels == 3 else { throw bad("in_chans", "\(channels) input channels; vitq's image pipeline gives 3 (RGB)") }
        guard inputSize == imageSize else { throw bad("input_size", "\(inputSize) is not the model's image size \(imageSize)") }
        guard mean.count == 3, mean.allSatisfy({ $0.isFinite }) else { throw bad("mean", "expected 3 finite numbers, got \(mean)") }
        guard std.count == 3, std.allSatisfy({ $0.isFinite && $0 > 0 }) else { throw bad("std", "expected 3 finite positive numbers, got \(std)") }
        guard cropPct.isFinite, cropPct > 0, cropPct <= 1 else { throw bad("crop_pct", "must be in (0, 1], got \(cropPct)") }
        guard interpolation == "bicubic" else { throw bad("interpolation", "only 'bicubic' is implemented, got '\(interpolation)'") }
    }
}
