import VitqTensor

/// Window geometry of Swin's attention, built as timm builds it.
enum SwinWindows {
    /// For each window row (image, wy, wx, iy, ix), the grid row it reads (and writes back).
    static func sourceRows(batch b: Int, resolution r: Int, window w: Int, shift sh: Int) -> [Int] {
        let side = r / w
        var rows = [Int](repeating: 0, count: b * r * r)
        var k = 0
        for i in 0..<b { for wy in 0..<side { for wx in 0..<side { for iy in 0..<w { for ix in 0..<w {
            let y = (wy * w + iy + sh) % r, x = (wx * w + ix + sh) % r
            rows[k] = (i * r + y) * r + x
            k += 1
        } } } } }
        return rows
    }

    /// bias[head][i][j] = table[((y_i − y_j + w − 1)(2w − 1) + x_i − x_j + w − 1), head]
    /// (timm's relative_position_index).
    static func relativeBias(_ table: Tensor, window w: Int, heads: Int) -> Tensor {
        let n = w * w
        let t = Tensor(zeros: [heads, n, n]), out = t.data
        for i in 0..<n { for j in 0..<n {
            let idx = (i / w - j / w + w - 1) * (2 * w - 1) + (i % w - j % w + w - 1)
            for h in 0..<heads { out[(h * n + i) * n + j] = table.data[idx * heads + h] }
        } }
        return t
    }

    /// mask[window][i][j]: 0 when tokens i and j came from the same region of the shifted grid,
    /// else −100 (timm's attn_mask). Regions split each axis at R − w and R − shift.
    static func shiftMask(resolution r: Int, window w: Int, shift sh: Int) -> Tensor {
        let side = r / w, n = w * w
        func region(_ v: Int) -> Int { v < r - w ? 0 : v < r - sh ? 1 : 2 }
        let t = Tensor(zeros: [side * side, n, n]), out = t.data
        for wy in 0..<side { for wx in 0..<side {
            let ids = (0..<n).map { region(wy * w + $0 / w) * 3 + region(wx * w + $0 % w) }
            let m = out + (wy * side + wx) * n * n
            for i in 0..<n { for j in 0..<n { m[i * n + j] = ids[i] == ids[j] ? 0 : -100 } }
        } }
        return t
    }
}

/// One block's additive attention-score terms, built once per model: the expanded relative
/// position bias [heads, n, n], the shift mask [nW, n, n] (shifted blocks only) and their sum
/// [nW or 1, heads, n, n] as the inference path adds it (0 + bias, then + mask). The traced path
/// adds bias then mask to the scores in place, as before.
final class SwinScoreBias: @unchecked Sendable {
    let bias: Tensor, mask: Tensor?, combined: Tensor

    init(table: Tensor, config c: SwinConfig, stage s: Int, block b: Int) {
        let w = c.window(s), heads = c.numHeads[s], sh = c.shift(s, block: b), n = w * w
        bias = SwinWindows.relativeBias(table, window: w, heads: heads)
        mask = sh > 0 ? SwinWindows.shiftMask(resolution: c.resolution(s), window: w, shift: sh) : nil
        let windows = mask?.shape[0] ?? 1
        combined = Tensor(zeros: [windows, heads, n, n])
        for win in 0..<windows { for h in 0..<heads {
            let dst = combined.data + (win * heads + h) * n * n, bh = bias.data + h * n * n
            for k in 0..<(n * n) { dst[k] += bh[k] }
            if let mask { let mw = mask.data + win * n * n; for k in 0..<(n * n) { dst[k] += mw[k] } }
        } }
    }

    /// Every block's terms, [stage][block].
    static func build(_ c: SwinConfig, _ stages: [[SwinBlock]]) -> [[SwinScoreBias]] {
        stages.enumerated().map { s, blocks in
            blocks.enumerated().map { b, blk in SwinScoreBias(table: blk.relativePositionBias, config: c, stage: s, block: b) }
        }
    }
}

extension SwinTransformer {
    /// For block `b` of stage `s`, the grid row (of one image's R·R tokens) that each window row
    /// (wy, wx, iy, ix) reads and writes back: the cyclic shift and the window partition as one gather.
    public func windowSourceRows(stage s: Int, block b: Int) -> [Int] {
        SwinWindows.sourceRows(batch: 1, resolution: config.resolution(s), window: config.window(s), shift: config.shift(s, block: b))
    }

    /// What block `b` of stage `s` adds to its attention scores: the relative position bias plus
    /// the shift mask, [windows, heads, n, n] (windows 1 for an unshifted block), the float
    /// values every engine adds.
    public func attentionScoreBias(stage s: Int, block b: Int) -> Tensor { scoreBiases[s][b].combined }
}
