import CVitqKernels
import Foundation
import VitqModels
import VitqTensor

/// The one implementation of stage-2 scoring, used in-process and by workers: every candidate
/// of a ``SearchTask`` is applied with the exact int8 kernels (quantize, pack, integer GEMM,
/// dequantizing epilogue) on the shard's FP inputs, and the output is compared with the FP
/// output (and gradient) of each image. Images run in parallel; per-image statistics are added
/// in image order, so the result does not depend on the thread count.
public final class CandidateScorer: @unchecked Sendable {
    public let model: any SearchableModel
    public let store: CalibrationStore
    let linears: [String: Linear]
    /// Integer kernels (the search), or float fake quantization for linear ops (benchmarks only).
    public var arithmetic = ScoringArithmetic.integer

    public init(model: any SearchableModel, store: CalibrationStore) {
        self.model = model; self.store = store
        var l: [String: Linear] = [:]
        for (name, op) in model.linearOps { if let lin = op as? Linear { l[name] = lin } }
        linears = l
    }

    /// Scores `task` on this scorer's shard.
    public func score(_ task: SearchTask) -> ShardScores {
        if task.op.hasSuffix(".matmul1") || task.op.hasSuffix(".matmul2") { return scoreMatmul(task) }
        return scoreLinear(task)
    }

    // MARK: linear ops

    func scoreLinear(_ task: SearchTask) -> ShardScores {
        let lin = linears[task.op]!
        let x = store["\(task.op).input"], o = store["\(task.op).output"], g = store["\(task.op).grad"]
        let n = lin.outFeatures, k = lin.inFeatures, rows = x.perImage / k, images = store.images.count
        let cands = task.candidates.count, groups = task.groups, gs = task.statsPerGroup
        var perImage = [Double](repeating: 0, count: images * cands * groups * gs)
        let bias = lin.bias.map { UnsafePointer($0.data) }

        perImage.withUnsafeMutableBufferPointer { acc in
            let accBase = acc.baseAddress!
            func run(_ image: Int, _ c: Int, weight w: TensorQuant, packed: PreparedWeight, input: OperandQuant, _ s: Scratch) {
                let ohat = s.floats(0, rows * n)
                if let wf = packed.float {
                    QuantizedProduct.runFloat(x.image(image), rows: rows, k: k, input: input, weight: wf.data, n: n, bias: bias, into: ohat, scratch: s)
                } else {
                    let cs = s.floats(1, n)
                    let xs = input.step(0)
                    for j in 0..<n { cs[j] = xs * w.rowScale(j) }
                    QuantizedProduct.run(x.image(image), lda: k, rows: rows, k: k, a: input, aIndex: 0, packedB: packed.packed!.pointer, n: n,
                                         colScale: cs, bias: bias, into: ohat, ldo: n, scratch: s)
                }
                fold(ohat, o.image(image), g.image(image), rows: rows, n: n, groups: groups, metric: task.metric,
                     into: accBase + (image * cands + c) * groups * gs, scratch: s)
            }
            switch task.operand {
            case .first:   // the weight: pack each candidate once, then every image
                let input = task.current[1]
                for c in 0..<cands {
                    let wq = task.candidates.quantizer(c).uniform
                    let packed = prepare(lin, wq)
                    Parallel.forEach(images) { i in
                        Scratch.with { s in run(i, c, weight: wq, packed: packed, input: input, s) }
                    }
                }
            case .second:  // the input: the weight is packed once; each image tries every candidate
                let wq = task.current[0].uniform
                let packed = prepare(lin, wq)
                Parallel.forEach(images) { i in
                    Scratch.with { s in
                        for c in 0..<cands { run(i, c, weight: wq, packed: packed, input: task.candidates.quantizer(c), s) }
                    }
                }
            }
        }
        return sumImages(perImage, images: images, candidates: cands, groups: groups, stats: gs)
    }

    /// A quantized weight ready for the product: packed int8, or dequantized floats (fake quant).
    struct PreparedWeight {
        var packed: PackedWeight?
        var float: Tensor?
    }

    func prepare(_ lin: Linear, _ wq: TensorQuant) -> PreparedWeight {
        let q = QuantizedWeight(weight: lin.weight, bias: nil, quant: wq)
        if arithmetic == .floatFakeQuant { return PreparedWeight(packed: nil, float: q.dequantized()) }
        return PreparedWeight(packed: PackedWeight(values: q.values, n: lin.outFeatures, k: lin.inFeatures), float: nil)
    }

    // MARK: attention products

    /// matmul1: S = scale·Q·Kᵀ per head (a = Q, b = K); matmul2: ctx = P·V per head (a = P, b = V).
    /// Each attention unit (an image, or one of Swin's windows) and head is scored on its own and
    /// the units' statistics are added in order.
    func scoreMatmul(_ task: SearchTask) -> ShardScores {
        let isQK = task.op.hasSuffix(".matmul1")
        let block = String(task.op.dropLast(".matmul1".count))
        let geo = model.attentionGeometry(block)!
        let t = geo.tokens, hd = geo.headDim, e = geo.dim, heads = geo.heads, nW = geo.windows
        let qkv = store["\(block).qkv.output"], probs = isQK ? nil : store["\(block).softmax"]
        let o = store["\(task.op).output"], g = store["\(task.op).grad"]
        let units = store.images.count * nW, cands = task.candidates.count, groups = task.groups, gs = task.statsPerGroup
        precondition(groups == heads, "attention operands are searched per head")
        let n = isQK ? t : hd, kk = isQK ? hd : t
        let scale = 1 / Float(hd).squareRoot()
        var perUnit = [Double](repeating: 0, count: units * cands * groups * gs)

        perUnit.withUnsafeMutableBufferPointer { acc in
            let accBase = acc.baseAddress!
            Parallel.forEach(units * heads) { uh in
                let u = uh / heads, h = uh % heads, i = u / nW, w = u % nW
                let base = qkv.image(i) + w * t * 3 * e + h * hd
                // A rows: Q [t, hd] at stride 3E, or P [t, t]; B: K [t, hd] at stride 3E, or V [t, hd] used transposed.
                let aPtr = isQK ? UnsafePointer(base) : UnsafePointer(probs!.image(i) + (w * heads + h) * t * t)
                let lda = isQK ? 3 * e : t
                let bPtr = UnsafePointer(base + (isQK ? e : 2 * e))
                let out = o.image(i) + (w * heads + h) * t * n, grad = g.image(i) + (w * heads + h) * t * n
                Scratch.with { s in
                    let pb = s.int16(Int(vitq_qgemm_packed_b_size(Int64(n), Int64(kk))))
                    let ohat = s.floats(0, t * n), cs = s.floats(1, n)
                    let order = task.ranks ? s.int32(t * n) : nil
                    if let order { vitq_rank_order_rows(out, Int64(t), Int64(n), order) }
                    var packedFor: Int? = nil
                    for cand in 0..<cands {
                        let aQ = task.operand == .first ? task.candidates.quantizer(cand) : task.current[0]
                        let bQ = task.operand == .second ? task.candidates.quantizer(cand) : task.current[1]
                        let ib = bQ.index(head: h), ia = aQ.index(head: h)
                        if task.operand == .second || packedFor == nil {
                            let bq = bQ.uniform
                            vitq_qgemm_quantize_pack_b(bPtr, Int64(3 * e), Int64(n), Int64(kk), isQK ? 0 : 1,
                                                       bq.scales[ib], bq.zeroPoints[ib], bq.scheme.qmin, bq.scheme.qmax, pb)
                            packedFor = cand
                        }
                        let aStep = aQ.step(ia), bStep = bQ.step(ib)
                        cs.update(repeating: isQK ? aStep * bStep * scale : aStep * bStep, count: n)
                        QuantizedProduct.run(aPtr, lda: lda, rows: t, k: kk, a: aQ, aIndex: ia, packedB: pb, n: n,
                                             colScale: cs, bias: nil, into: ohat, ldo: n, scratch: s)
                        let cell = accBase + ((u * cands + cand) * groups + h) * gs
                        fold(ohat, out, grad, rows: t, n: n, groups: 1, metric: task.metric, into: cell, scratch: s)
                        if let order {
                            cell[task.metric.groupStats] += vitq_rank_loss_rows(ohat, order, Int64(t), Int64(n), task.rankingMargin)
                            cell[task.metric.groupStats + 1] += Double(t * (n - 1))
                        }
                    }
                }
            }
        }
        return sumImages(perUnit, images: units, candidates: cands, groups: groups, stats: gs)
    }

    // MARK: ranges

    /// Max |x| on this shard: `[input]` for a linear op; per head `[a₀…a_H−1, b₀…b_H−1]` for a
    /// matmul (Q and K, or P and V). Shards merge by max.
    public func ranges(_ op: String) -> [Float] {
        let images = store.images.count
        guard op.hasSuffix(".matmul1") || op.hasSuffix(".matmul2") else {
            let x = store["\(op).input"]
            return [(0..<images).reduce(Float(0)) { max($0, Ops.maxAbs(x.image($1), cols: x.perImage)) }]
        }
        let block = String(op.dropLast(".matmul1".count))
        let geo = model.attentionGeometry(block)!
        let t = geo.tokens, hd = geo.headDim, e = geo.dim, heads = geo.heads, nW = geo.windows
        let qkv = store["\(block).qkv.output"]
        // Every unit's q/k/v rows are contiguous at stride 3E: nW·t rows per image.
        let rows = nW * t
        var m = [Float](repeating: 0, count: 2 * heads)
        for i in 0..<images {
            for h in 0..<heads {
                if op.hasSuffix(".matmul1") {
                    m[h] = max(m[h], Ops.maxAbs(qkv.image(i) + h * hd, rows: rows, cols: hd, ld: 3 * e))
                    m[heads + h] = max(m[heads + h], Ops.maxAbs(qkv.image(i) + e + h * hd, rows: rows, cols: hd, ld: 3 * e))
                } else {
                    for w in 0..<nW {
                        m[h] = max(m[h], Ops.maxAbs(store["\(block).softmax"].image(i) + (w * heads + h) * t * t, cols: t * t))
                    }
                    m[heads + h] = max(m[heads + h], Ops.maxAbs(qkv.image(i) + 2 * e + h * hd, rows: rows, cols: hd, ld: 3 * e))
                }
            }
        }
        return m
    }

    // MARK: bias correction

    /// Σ (ô − o) per output channel over the shard, with the final quantizers, and Σ|x|.
    public func outputError(_ task: OutputErrorTask) -> OutputErrorSums {
        let lin = linears[task.op]!
        let x = store["\(task.op).input"], o = store["\(task.op).output"]
        let n = lin.outFeatures, k = lin.inFeatures, rows = x.perImage / k, images = store.images.count
        let wq = task.weight.uniform
        let packed = PackedWeight(values: QuantizedWeight(weight: lin.weight, bias: nil, quant: wq).values, n: n, k: k)
        precondition(arithmetic == .integer, "bias correction runs on the integer kernels")
        let cell = n + 3
        var perImage = [Double](repeating: 0, count: images * cell)
        perImage.withUnsafeMutableBufferPointer { acc in
            let accBase = acc.baseAddress!
            Parallel.forEach(images) { i in
                Scratch.with { s in
                    let ohat = s.floats(0, rows * n), cs = s.floats(1, n)
                    let xs = task.input.step(0)
                    for j in 0..<n { cs[j] = xs * wq.rowScale(j) }
                    QuantizedProduct.run(x.image(i), lda: k, rows: rows, k: k, a: task.input, aIndex: 0, packedB: packed.pointer, n: n,
                                         colScale: cs, bias: lin.bias.map { UnsafePointer($0.data) }, into: ohat, ldo: n, scratch: s)
                    let c = accBase + i * cell
                    vitq_error_columns(ohat, Int64(n), o.image(i), Int64(n), Int64(rows), Int64(n), c)
                    var a = 0.0, e2 = 0.0, o2 = 0.0
                    for j in 0..<(rows * k) { a += Double(abs(x.image(i)[j])) }
                    let oi = o.image(i)
                    for j in 0..<(rows * n) {
                        let d = Double(ohat[j]) - Double(oi[j])
                        e2 += d * d; o2 += Double(oi[j]) * Double(oi[j])
                    }
                    c[n] = a; c[n + 1] = e2; c[n + 2] = o2
                }
            }
        }
        var r = OutputErrorSums(channels: n)
        for i in 0..<images {
            let c = i * cell
            r.add(OutputErrorSums(sums: Array(perImage[c..<(c + n)]), rows: rows, inputAbsSum: perImage[c + n],
                                  squaredError: perImage[c + n + 1], squaredReference: perImage[c + n + 2]))
        }
        return r
    }

    // MARK: statistics

    /// Adds one image's statistics of ô against o (and g) [rows, n] to `groups` groups of
    /// consecutive columns at `acc` ([groups][stats]).
    func fold(_ ohat: UnsafePointer<Float>, _ o: UnsafePointer<Float>, _ g: UnsafePointer<Float>, rows: Int, n: Int, groups: Int,
              metric: SearchMetric, into acc: UnsafeMutablePointer<Double>, stride: Int? = nil, scratch s: Scratch) {
        let cs = metric.columnStats
        let col = s.doubles(cs * n)
        col.update(repeating: 0, count: cs * n)
        vitq_score_columns(ohat, Int64(n), o, g, Int64(n), Int64(rows), Int64(n), metric.kernelKind, col)
        let per = n / groups
        var sums = [Double](repeating: 0, count: cs)
        for grp in 0..<groups {
            for st in 0..<cs {
                var v = 0.0
                for j in (grp * per)..<((grp + 1) * per) { v += col[st * n + j] }
                sums[st] = v
            }
            sums.withUnsafeBufferPointer { metric.fold(image: $0.baseAddress!, count: rows * per, into: acc + grp * (stride ?? metric.groupStats)) }
        }
    }

    func sumImages(_ perImage: [Double], images: Int, candidates: Int, groups: Int, stats: Int) -> ShardScores {
        var r = ShardScores(candidates: candidates, groups: groups, stats: stats)
        let cell = candidates * groups * stats
        for i in 0..<images { for j in 0..<cell { r.values[j] += perImage[i * cell + j] } }
        return r
    }
}
