/// Clipping thresholds from an ``ActivationHistogram`` (Wu et al., "Integer Quantization for Deep
/// Learning Inference": percentile, TensorRT's KL/entropy search, MSE), and the exact per-channel MSE
/// threshold of a weight row.
///
/// Every search runs in Double with a fixed loop order and no parallelism, and the KL search takes its
/// logarithms from ``portableLog(_:)`` (plain IEEE arithmetic, not the CPU-dispatched libm `log`), so
/// the same histogram gives the same bits on any machine. Bin edges and centres are those of
/// ``ActivationHistogram/edge(_:)`` and ``ActivationHistogram/centres``; each threshold is a bin edge
/// rounded to Float. Ties keep the first candidate in the stated scan order.
///
/// Degenerate histograms (``ActivationHistogram/isDegenerate``) give 0 and (lower, upper); an empty
/// histogram (no values) gives `upper` and (lower, upper): there is nothing to clip.
public enum HistogramThreshold {
    /// The smoothing of the KL search, in counts (see ``entropy(_:quantizedBins:)``).
    public static let klEpsilon = 1e-4

    /// The most coordinate-descent rounds of ``mseRange(_:steps:)`` and ``entropyRange(_:quantizedBins:)``.
    public static let descentRounds = 4

    /// Symmetric thresholds t (0 < t <= upper) on a histogram of |x| over [0, amax].
    ///
    /// Percentile: the upper edge of the first bin k whose cumulative count reaches the target,
    /// `Double(counts[0] + … + counts[k]) >= percentile / 100 * Double(total)`. This is the bin that
    /// pytorch-quantization's `searchsorted(cdf, percentile / 100)` finds (with an exact integer
    /// cumulative count instead of a float cdf); pytorch-quantization returns that bin's lower edge,
    /// we return its upper edge, so at least `percentile`% of the values are <= t and t > 0.
    public static func percentile(_ h: ActivationHistogram, percentile: Double) -> Float {
        if h.isDegenerate { return 0 }
        let total = h.total
        if total == 0 { return h.upper }
        let target = percentile / 100 * Double(total)
        var cum: UInt64 = 0
        for k in 0..<h.bins {
            cum += h.counts[k]
            if Double(cum) >= target { return Float(h.edge(k + 1)) }
        }
        return h.upper
    }

    /// TensorRT's KL search: `quantizedBins` (128 for int8) levels; every threshold from quantizedBins
    /// bins to all bins is tried (i = quantizedBins ... bins).
    ///
    /// For candidate i, the reference P is bins 0..<i with the outliers (bins i..<end) added to bin i-1.
    /// The candidate Q is built, as in TensorRT's description and MXNet/TVM's implementation, from the
    /// in-range counts bins 0..<i (without the outliers: were they in Q, i = quantizedBins would give
    /// Q = P and always win): bin j goes to group `j * quantizedBins / i` (integer division, groups of
    /// ⌊i/q⌋ or ⌈i/q⌉ bins, as pytorch-quantization's `digitize`), and each group's mass is spread
    /// evenly over the group's bins where P is non-zero (MXNet's `is_nonzeros` of P, so bin i-1 counts
    /// when it holds only outliers). KL(P||Q) with both normalised to 1.
    ///
    /// Smoothing: Q is zero exactly where P is, except in a group with no in-range mass whose end bin
    /// holds outliers. P's empty bins add 0·log 0 = 0, so only those Q bins need smoothing: each gets
    /// `klEpsilon` (1e-4) counts, MXNet/TVM's `_smooth_distribution` epsilon, and Q is renormalised
    /// (MXNet also takes ε·zeros/nonzeros off the other bins; we leave that out, it only perturbs KL
    /// by O(ε) and would cost the O(q)-per-candidate closed form). A candidate with no in-range mass
    /// at all (Q empty) is skipped (KL = ∞, as scipy's entropy gives pytorch-quantization).
    /// We do not copy pytorch-quantization's `bins[0] = bins[1]`.
    ///
    /// With prefix sums of counts, of non-zero bins and of c·log c, each candidate costs O(quantizedBins):
    /// KL = (Σ_j c'_j log c'_j − Σ_g P_g log(M_g / n_g) − Σ_smoothed c'_j log ε) / T + log((S + mε) / T),
    /// c' the counts of P, P_g and M_g a group's P and in-range mass, n_g its non-zero P bins,
    /// S the in-range mass, m the smoothed bins, T the total.
    ///
    /// Returns the upper edge of bin i-1 (edge i, pytorch-quantization's `calib_bin_edges[i]`) for the i
    /// with the least KL, the smallest such i on ties. Fewer bins than `quantizedBins`: `upper`.
    public static func entropy(_ h: ActivationHistogram, quantizedBins: Int) -> Float {
        if h.isDegenerate { return 0 }
        let kl = KLSearch(h, quantizedBins: quantizedBins)
        if kl.total == 0 || h.bins < kl.q { return h.upper }
        return Float(h.edge(kl.bestUpper(lower: 0, from: kl.q, through: h.bins) ?? h.bins))
    }

    /// The t minimising the expected squared quantization error under the histogram: values at bin
    /// centres, fake-quantized with scale s = t/levels on the symmetric grid [-levels, levels] (round
    /// half to even, clamped), `Σ_k counts[k] · (clamp(rne(x_k/s), -levels, levels)·s − x_k)²`, in Double.
    ///
    /// Candidates: the upper edges t = edge(i) for i = levels+1 ... bins (capped to 1 ... bins), scanned
    /// upwards, the first minimum kept (pytorch-quantization tries the centres of bins 128 ..< bins).
    /// Below levels+1 bins the grid step is finer than a bin and the centre approximation is meaningless.
    public static func mse(_ h: ActivationHistogram, levels: Int) -> Float {
        if h.isDegenerate { return 0 }
        let g = GridError(h)
        if g.total == 0 { return h.upper }
        let L = Double(max(1, levels))
        let start = max(1, min(levels + 1, h.bins))
        var best = h.bins, bestErr = Double.infinity
        for i in start...h.bins {
            let s = h.edge(i) / L
            let e = g.error(scale: s, zero: 0, qlo: -L, qhi: L)
            if e < bestErr { bestErr = e; best = i }
        }
        return Float(h.edge(best))
    }

    /// Affine percentile range on a histogram of signed x over [min, max]: lo is the lower edge of the
    /// last bin k whose count from k to the end reaches `percentile / 100 * total` (at most (100−p)%
    /// below lo), hi the upper edge of the first bin whose cumulative count reaches it (as
    /// ``percentile(_:percentile:)``). For percentile < 50 the two bins may cross; then they are swapped.
    public static func percentileRange(_ h: ActivationHistogram, percentile: Double) -> (lo: Float, hi: Float) {
        if h.isDegenerate { return degenerateRange(h) }
        let total = h.total
        if total == 0 { return (h.lower, h.upper) }
        let target = percentile / 100 * Double(total)
        var kHi = h.bins - 1, cum: UInt64 = 0
        for k in 0..<h.bins {
            cum += h.counts[k]
            if Double(cum) >= target { kHi = k; break }
        }
        var kLo = 0, suffix: UInt64 = 0
        for k in stride(from: h.bins - 1, through: 0, by: -1) {
            suffix += h.counts[k]
            if Double(suffix) >= target { kLo = k; break }
        }
        if kLo > kHi { swap(&kLo, &kHi) }
        return (Float(h.edge(kLo)), Float(h.edge(kHi + 1)))
    }

    /// Affine MSE range: the grid of `steps` steps (255 for int8) over [lo, hi] widened to include 0,
    /// s = (b − a)/steps with a = min(lo, 0), b = max(hi, 0), and the zero point of
    /// `QuantScheme.affine` counted from qmin, z = clamp(rne(−a/s), 0, steps) (in Double); a centre x
    /// becomes (clamp(rne(x/s) + z, 0, steps) − z)·s, and the counts weight the squared errors.
    ///
    /// Coordinate descent over bin edges from (lo, hi) = (edge 0, edge bins): each round first scans hi
    /// over the edges above lo upwards, then lo over the edges below hi upwards, keeping the first strict
    /// minimum; at most ``descentRounds`` rounds, stopping after a round that changes neither end.
    public static func mseRange(_ h: ActivationHistogram, steps: Int) -> (lo: Float, hi: Float) {
        if h.isDegenerate { return degenerateRange(h) }
        let g = GridError(h)
        if g.total == 0 { return (h.lower, h.upper) }
        let n = Double(max(1, steps))
        let edges = h.edges
        func error(_ l: Int, _ r: Int) -> Double {
            let a = min(edges[l], 0), b = max(edges[r], 0)
            let s = (b - a) / n
            let z = min(n, max(0, (-a / s).rounded(.toNearestOrEven)))
            return g.error(scale: s, zero: z, qlo: 0, qhi: n)
        }
        var l = 0, r = h.bins
        for _ in 0..<descentRounds {
            let (l0, r0) = (l, r)
            r = argmin(l + 1...h.bins) { error(l, $0) }
            l = argmin(0...(r - 1)) { error($0, r) }
            if l == l0 && r == r0 { break }
        }
        return (Float(edges[l]), Float(edges[r]))
    }

    /// Affine KL range: the window [edge l, edge r) of at least `quantizedBins` bins (256 for an int8
    /// affine grid) takes the place of [0, edge i): P is bins l..<r with the outliers below added to bin
    /// l and those above to bin r−1, Q groups the in-range bins l..<r into `quantizedBins` groups,
    /// spread over P's non-zero bins, with the smoothing of ``entropy(_:quantizedBins:)``. With l = 0
    /// it is exactly the symmetric search. Zero need not lie in the window: the caller's grid widens
    /// to include it.
    ///
    /// Coordinate descent from (0, bins) like ``mseRange(_:steps:)``: each round scans r over
    /// l+quantizedBins ... bins, then l over 0 ... r−quantizedBins (first least KL), at most
    /// ``descentRounds`` rounds. Fewer bins than `quantizedBins`: (lower, upper).
    public static func entropyRange(_ h: ActivationHistogram, quantizedBins: Int) -> (lo: Float, hi: Float) {
        if h.isDegenerate { return degenerateRange(h) }
        let kl = KLSearch(h, quantizedBins: quantizedBins)
        if kl.total == 0 || h.bins < kl.q { return (h.lower, h.upper) }
        var l = 0, r = h.bins
        for _ in 0..<descentRounds {
            let (l0, r0) = (l, r)
            r = kl.bestUpper(lower: l, from: l + kl.q, through: h.bins) ?? r
            l = kl.bestLower(upper: r, from: 0, through: r - kl.q) ?? l
            if l == l0 && r == r0 { break }
        }
        return (Float(h.edge(l)), Float(h.edge(r)))
    }

    /// Per-channel weight threshold minimising the squared error of the actual values (exact, not a
    /// histogram): candidates t = amax·i/200 for i = 100 ... 200 (0.5% steps from amax/2 to amax),
    /// computed `Double(amax) * Double(i) / 200`, s = t/levels, error Σ (clamp(rne(x/s), −levels,
    /// levels)·s − x)² summed in index order; the first (smallest) t on ties. amax = max |x|; NaN and
    /// ±infinity are skipped; an all-zero or empty row gives 0.
    public static func mseWeight(_ values: UnsafeBufferPointer<Float>, levels: Int) -> Float {
        var amax: Float = 0
        for x in values where x.isFinite { amax = max(amax, abs(x)) }
        guard amax > 0 else { return 0 }
        let L = Double(max(1, levels))
        var bestT = Double(amax), bestErr = Double.infinity
        for i in 100...200 {
            let t = Double(amax) * Double(i) / 200
            let s = t / L
            var e = 0.0
            for x in values where x.isFinite {
                let v = Double(x)
                let d = min(L, max(-L, (v / s).rounded(.toNearestOrEven))) * s - v
                e += d * d
            }
            if e < bestErr { bestErr = e; bestT = t }
        }
        return Float(bestT)
    }

    private static func degenerateRange(_ h: ActivationHistogram) -> (lo: Float, hi: Float) {
        h.lower.isFinite && h.upper.isFinite ? (h.lower, h.upper) : (0, 0)
    }

    /// The first index of `range` with the least `f`.
    private static func argmin(_ range: ClosedRange<Int>, _ f: (Int) -> Double) -> Int {
        var best = range.lowerBound, bestValue = Double.infinity
        for i in range {
            let v = f(i)
            if v < bestValue { bestValue = v; best = i }
        }
        return best
    }
}

/// Σ counts·(fake-quantized centre − centre)² for a grid, with the clamped ends from prefix sums.
struct GridError {
    let x: [Double], c: [Double]
    /// Prefix sums (bins + 1) of c, c·x and c·x², accumulated upwards.
    let s0: [Double], s1: [Double], s2: [Double]
    var total: Double { s0[s0.count - 1] }

    /// The centres and counts of the non-empty bins, and how many of them lie below each bin (bins + 1).
    let nzx: [Double], nzc: [Double], nzBefore: [Int]

    init(_ h: ActivationHistogram) {
        x = h.centres
        c = h.counts.map { Double($0) }
        var a = [0.0], b = [0.0], d = [0.0], before = [0], xs: [Double] = [], cs: [Double] = []
        for k in 0..<c.count {
            a.append(a[k] + c[k]); b.append(b[k] + c[k] * x[k]); d.append(d[k] + c[k] * x[k] * x[k])
            if c[k] != 0 { xs.append(x[k]); cs.append(c[k]) }
            before.append(xs.count)
        }
        s0 = a; s1 = b; s2 = d; nzx = xs; nzc = cs; nzBefore = before
    }

    /// The first bin in which `pred` (monotone: false then true over the centres) holds, or bins.
    private func partition(_ pred: (Double) -> Bool) -> Int {
        var lo = 0, hi = x.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if pred(x[mid]) { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }

    /// Σ c (x − v)² over bins a..<b.
    private func tail(_ a: Int, _ b: Int, _ v: Double) -> Double {
        guard b > a else { return 0 }
        let n0 = s0[b] - s0[a], n1 = s1[b] - s1[a], n2 = s2[b] - s2[a]
        return max(0, n2 - 2 * v * n1 + v * v * n0)
    }

    /// The error of the grid x ↦ (clamp(rne(x/s) + z, qlo, qhi) − z)·s.
    func error(scale s: Double, zero z: Double, qlo: Double, qhi: Double) -> Double {
        let kA = partition { ($0 / s).rounded(.toNearestOrEven) + z > qlo }
        let kB = max(kA, partition { ($0 / s).rounded(.toNearestOrEven) + z >= qhi })
        var e = tail(0, kA, (qlo - z) * s)
        nzx.withUnsafeBufferPointer { xs in nzc.withUnsafeBufferPointer { cs in
            for j in nzBefore[kA]..<nzBefore[kB] {
                let d = (xs[j] / s).rounded(.toNearestOrEven) * s - xs[j]
                e += cs[j] * d * d
            }
        } }
        return e + tail(kB, x.count, (qhi - z) * s)
    }
}

/// The KL divergence of ``HistogramThreshold/entropy(_:quantizedBins:)`` for windows [l, r) of bins,
/// O(quantizedBins) each from prefix sums.
struct KLSearch {
    let q: Int
    let c: [Double]
    /// Prefix sums (bins + 1): counts, non-zero bins, c·log c.
    let cnt: [Double], nz: [Int], clogc: [Double]
    var total: Double { cnt[cnt.count - 1] }

    init(_ h: ActivationHistogram, quantizedBins: Int) {
        q = max(1, quantizedBins)
        c = h.counts.map { Double($0) }
        var a = [0.0], n = [0], f = [0.0]
        for k in 0..<c.count {
            a.append(a[k] + c[k]); n.append(n[k] + (c[k] > 0 ? 1 : 0)); f.append(f[k] + Self.xlogx(c[k]))
        }
        cnt = a; nz = n; clogc = f
    }

    static func xlogx(_ v: Double) -> Double { v > 0 ? v * portableLog(v) : 0 }

    /// KL(P||Q) of the window [l, r), r − l >= q; infinity when the window holds no value.
    func kl(_ l: Int, _ r: Int) -> Double {
        let n = r - l, low = cnt[l], high = total - cnt[r], inRange = cnt[r] - cnt[l]
        guard inRange > 0 else { return .infinity }
        let eps = HistogramThreshold.klEpsilon
        var sum = 0.0, smoothed = 0
        for g in 0..<q {
            let a = l + (g * n + q - 1) / q, b = l + ((g + 1) * n + q - 1) / q
            let mass = cnt[b] - cnt[a]
            var p = mass, plogp = clogc[b] - clogc[a], nonzero = nz[b] - nz[a], outliersOnly = 0
            func addOutliers(_ j: Int, _ extra: Double) {
                guard extra > 0 else { return }
                plogp += Self.xlogx(c[j] + extra) - Self.xlogx(c[j])
                p += extra
                if c[j] == 0 { nonzero += 1; outliersOnly += 1 }
            }
            if g == 0 { addOutliers(l, low + (l == r - 1 ? high : 0)) }
            if g == q - 1 && l != r - 1 { addOutliers(r - 1, high) }
            if mass > 0 {
                sum += plogp - p * portableLog(mass / Double(nonzero))
            } else if p > 0 {
                sum += plogp - p * portableLog(eps)
                smoothed += outliersOnly
            }
        }
        return sum / total + portableLog((inRange + Double(smoothed) * eps) / total)
    }

    /// The r in from...through with the least KL of [l, r) (the first on ties), nil if none is finite.
    func bestUpper(lower l: Int, from: Int, through: Int) -> Int? {
        guard from <= through else { return nil }
        var best: Int?, bestValue = Double.infinity
        for r in from...through {
            let v = kl(l, r)
            if v < bestValue { bestValue = v; best = r }
        }
        return best
    }

    /// The l in from...through with the least KL of [l, r) (the first on ties), nil if none is finite.
    func bestLower(upper r: Int, from: Int, through: Int) -> Int? {
        guard from <= through else { return nil }
        var best: Int?, bestValue = Double.infinity
        for l in from...through {
            let v = kl(l, r)
            if v < bestValue { bestValue = v; best = l }
        }
        return best
    }
}

/// The natural logarithm of a positive finite x from additions, multiplications and one division only
/// (no FMA, no table, no CPU dispatch), so it gives the same bits everywhere. x = m·2^e with m in
/// [√½, √2); with f = m − 1 (exact) and s = f/(2 + f), log m = 2·atanh(s) = f − s·(f − R),
/// R = 2(s²/3 + s⁴/5 + … + s²²/23) (truncation below 1e-18 for |s| < 0.172); then e·ln 2 is added in
/// two parts (fdlibm's split of ln 2, exact products for any Double exponent).
public func portableLog(_ x: Double) -> Double {
    guard x > 0 else { return x == 0 ? -.infinity : .nan }
    guard x.isFinite else { return x }
    var e = Double(x.exponent)
    var m = x.significand
    if m > 1.4142135623730951 { m /= 2; e += 1 }
    let f = m - 1, s = f / (2 + f), z = s * s
    var r = c23 * z + c21
    r = r * z + c19; r = r * z + c17; r = r * z + c15; r = r * z + c13; r = r * z + c11
    r = r * z + c9; r = r * z + c7; r = r * z + c5; r = r * z + c3
    r = r * z
    let ln2Hi = 6.93147180369123816490e-01, ln2Lo = 1.90821492927058770002e-10
    return e * ln2Hi + ((f - s * (f - r)) + e * ln2Lo)
}

private let c3 = 2.0 / 3, c5 = 2.0 / 5, c7 = 2.0 / 7, c9 = 2.0 / 9, c11 = 2.0 / 11, c13 = 2.0 / 13
private let c15 = 2.0 / 15, c17 = 2.0 / 17, c19 = 2.0 / 19, c21 = 2.0 / 21, c23 = 2.0 / 23
