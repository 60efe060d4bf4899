import Foundation
import VitqModels
import VitqTensor

extension CandidateScorer {
    /// The operand groups of `op` on image `i` of the shard, as rows: `visit(group, row pointer,
    /// row length)` for every contiguous row of every group, in a fixed order. A linear op has one
    /// group (its input); `<block>.matmul1` Q then K per head, `<block>.matmul2` P then V per head.
    func forEachOperandRow(_ op: String, image i: Int, _ visit: (Int, UnsafePointer<Float>, Int) -> Void) {
        guard op.hasSuffix(".matmul1") || op.hasSuffix(".matmul2") else {
            let x = store["\(op).input"]
            visit(0, x.image(i), x.perImage)
            return
        }
        let isQK = op.hasSuffix(".matmul1")
        let block = String(op.dropLast(".matmul1".count))
        let geo = model.attentionGeometry(block)!
        let t = geo.tokens, hd = geo.headDim, e = geo.dim, heads = geo.heads, rows = geo.windows * t
        let qkv = store["\(block).qkv.output"].image(i)
        for h in 0..<heads {
            if isQK {
                for r in 0..<rows { visit(h, qkv + r * 3 * e + h * hd, hd) }
            } else {
                let p = store["\(block).softmax"].image(i)
                for w in 0..<geo.windows { visit(h, p + (w * heads + h) * t * t, t * t) }
            }
            for r in 0..<rows { visit(heads + h, qkv + r * 3 * e + (isQK ? e : 2 * e) + h * hd, hd) }
        }
    }

    /// The number of operand groups of `op`.
    func operandGroups(_ op: String) -> Int {
        guard op.hasSuffix(".matmul1") || op.hasSuffix(".matmul2") else { return 1 }
        return 2 * model.attentionGeometry(String(op.dropLast(".matmul1".count)))!.heads
    }

    /// `task` on this shard: extrema (as a `ranges` result) or histogram counts, images in order.
    public func statistics(_ task: StatisticsTask) -> WorkResult {
        let groups = operandGroups(task.op), images = store.images.count
        switch task.kind {
        case .extrema:
            var v = [Float](repeating: 0, count: 2 * groups)
            for i in 0..<images {
                forEachOperandRow(task.op, image: i) { g, p, n in
                    var lo = v[g], hi = v[groups + g]
                    for j in 0..<n { lo = max(lo, -p[j]); hi = max(hi, p[j]) }
                    v[g] = lo; v[groups + g] = hi
                }
            }
            return .ranges(v)
        case .histogram:
            var hist = (0..<groups).map { ActivationHistogram(lower: task.edges[2 * $0], upper: task.edges[2 * $0 + 1], bins: task.bins) }
            for i in 0..<images {
                forEachOperandRow(task.op, image: i) { g, p, n in hist[g].add(UnsafeBufferPointer(start: p, count: n), absolute: task.absolute[g]) }
            }
            return .counts(hist.flatMap { h in h.counts.map { Double($0) } })
        case .elements:
            var n = 0
            for i in 0..<images { forEachOperandRow(task.op, image: i) { _, _, len in n += len } }
            return .counts([Double(n)])
        case .nuclear:
            return .counts([nuclearNorms(task.op)])
        }
    }

    /// Σ over the shard's images of the nuclear norms of `op`'s attention maps (one per head and
    /// window of `<block>.matmul2`) or of its FP output (a linear op), in image order.
    func nuclearNorms(_ op: String) -> Double {
        var total = 0.0
        if op.hasSuffix(".matmul2") {
            let geo = model.attentionGeometry(String(op.dropLast(".matmul2".count)))!
            let p = store["\(op.dropLast(".matmul2".count)).softmax"], t = geo.tokens
            for i in 0..<store.images.count {
                for m in 0..<(geo.windows * geo.heads) { total += NuclearNorm.of(p.image(i) + m * t * t, rows: t, cols: t) ?? .nan }
            }
            return total
        }
        let lin = model.linearOps.first { $0.name == op }!.op as! Linear
        let x = store["\(op).input"], k = lin.inFeatures, n = lin.outFeatures, rows = x.perImage / k
        let y = Tensor(zeros: [rows, n])
        for i in 0..<store.images.count {
            Gemm.reproducible { lin.forward(x.image(i), rows: rows, into: y.data) }
            total += NuclearNorm.of(y.data, rows: rows, cols: n) ?? .nan
        }
        return total
    }

    /// `task` on this shard: the stored images through the integer engine with `task`'s ops
    /// quantized, against the stored FP32 logits: `[Σ KL(p_fp ‖ p_q), top-1 agreements, images]`,
    /// per image in order, in double.
    public func probe(_ task: ProbeTask) -> [Double] {
        let decisions = Dictionary(task.decisions.map { ($0.op, $0) }, uniquingKeysWith: { a, _ in a })
        let net = SearchCalibration.network(model: model, decisions: decisions)
        let fp = store["logits"], n = store.images.count
        let model = net.makeModel(.integer)
        // Restart at the earliest quantized op's block when the model can and stage 1 kept that
        // stream; otherwise run from the images.
        var stream: (model: any BlockResumable, block: Int, residual: CapturedTensor)?
        if let m = model as? any BlockResumable {
            let blocks = task.decisions.map { m.block(of: $0.op) }
            if !blocks.contains(where: { $0 == nil }), let b = blocks.compactMap({ $0 }).min(),
               let r = store.tensors[CalibrationCollector.storeName(m.residualTap(block: b))] {
                stream = (m, b, r)
            }
        }
        /// The shard's images of a stored tensor as one batch.
        func batch(_ t: CapturedTensor) -> Tensor {
            let x = Tensor(zeros: [n] + t.imageShape)
            x.data.update(from: t.image(0), count: n * t.perImage)
            return x
        }
        let q: Tensor
        if let (m, b, r) = stream {
            q = Gemm.reproducible { m.forward(fromBlock: b, residual: batch(r), observer: nil) }
        } else {
            q = Gemm.reproducible { model.forward(batch(store["images"]), observer: nil) }
        }
        let classes = fp.perImage
        var kl = 0.0, agree = 0.0
        for i in 0..<n {
            let (k, same) = SensitivityMeasure.compare(UnsafePointer(fp.image(i)), UnsafePointer(q.data + i * classes), classes: classes)
            kl += k
            if same { agree += 1 }
        }
        return [kl, agree, Double(n)]
    }
}

/// How far quantized logits are from the FP32 ones, image by image (the sensitivity probes).
/// Exponentials and logarithms are plain IEEE arithmetic (``portableExp(_:)``, `portableLog`),
/// not the CPU-dispatched libm, so the KL values that rank ops and that the file records are the
/// same bits on any machine.
public enum SensitivityMeasure {
    /// KL(softmax(fp) ‖ softmax(q)) in double, and whether the top-1 classes (first maximum) agree.
    public static func compare(_ fp: UnsafePointer<Float>, _ q: UnsafePointer<Float>, classes: Int) -> (kl: Double, agree: Bool) {
        func logSoftmax(_ z: UnsafePointer<Float>) -> [Double] {
            var m = -Double.infinity
            for j in 0..<classes { m = max(m, Double(z[j])) }
            var s = 0.0
            for j in 0..<classes { s += portableExp(Double(z[j]) - m) }
            let l = m + portableLog(s)
            return (0..<classes).map { Double(z[$0]) - l }
        }
        func top(_ z: UnsafePointer<Float>) -> Int {
            var best = 0
            for j in 1..<classes where z[j] > z[best] { best = j }
            return best
        }
        let lp = logSoftmax(fp), lq = logSoftmax(q)
        var kl = 0.0
        for j in 0..<classes { kl += portableExp(lp[j]) * (lp[j] - lq[j]) }
        return (max(0, kl), top(fp) == top(q))
    }
}

/// e^x from IEEE operations alone (no libm): x = k·ln 2 + r with |r| ≤ ln 2 / 2 (ln 2 split in two
/// parts, Cody–Waite), e^r by its Taylor series to r¹⁴/14! in Horner form (within a few ulps of
/// libm on that range), scaled by 2^k. The same bits on every machine; 0 below −745, +∞ above 709.78.
public func portableExp(_ x: Double) -> Double {
    guard x.isFinite else { return x.isNaN ? x : (x > 0 ? x : 0) }
    if x > 709.78 { return .infinity }
    if x < -745.2 { return 0 }
    let ln2Hi = 0.693147180369123816490, ln2Lo = 1.90821492927058770002e-10
    let k = (x / 0.6931471805599453).rounded(.toNearestOrEven)
    let r = (x - k * ln2Hi) - k * ln2Lo
    // Horner: 1 + r(1 + r/2(1 + r/3(… (1 + r/14)))).
    var sum = 1.0
    for n in stride(from: 14, through: 1, by: -1) { sum = 1 + r * sum / Double(n) }
    // 2^k in two steps, so that k down to −1074 stays representable.
    let k1 = Int(k) / 2, k2 = Int(k) - k1
    return sum * Double(sign: .plus, exponent: k1, significand: 1) * Double(sign: .plus, exponent: k2, significand: 1)
}
