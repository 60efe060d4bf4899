/// Integer counts of values in `counts.count` equal bins over [lower, upper]; values outside are
/// clamped into the first/last bin. Counts are integers, so histograms of shards add exactly.
///
/// Bin edges are numpy's `np.linspace(lower, upper, bins + 1)` in Double: edge k is
/// `Double(k) * step + Double(lower)` with `step = (Double(upper) - Double(lower)) / Double(bins)`,
/// and edge `bins` is exactly `Double(upper)`. Bin k holds the values with edge(k) <= x < edge(k + 1)
/// (the last bin also holds x == upper), as `np.histogram` does; NaN values are skipped, ±infinity
/// clamp like any other outside value.
///
/// A histogram whose range is empty or not finite (`!(upper > lower)`, e.g. an all-zero tensor
/// recorded over [0, 0]) is degenerate: every value lands in bin 0 and the thresholds of
/// ``HistogramThreshold`` are 0 (symmetric) and (lower, upper) (affine).
public struct ActivationHistogram: Equatable, Sendable, Codable {
    public let lower: Float
    public let upper: Float
    public private(set) var counts: [UInt64]

    /// An empty histogram of `bins` (at least 1) bins over [lower, upper].
    public init(lower: Float, upper: Float, bins: Int = 2048) {
        precondition(bins >= 1, "a histogram needs at least one bin")
        self.lower = lower
        self.upper = upper
        self.counts = [UInt64](repeating: 0, count: bins)
    }

    /// A histogram of the given counts (at least one bin) over [lower, upper]: shards' merged counts.
    public init(lower: Float, upper: Float, counts: [UInt64]) {
        precondition(!counts.isEmpty, "a histogram needs at least one bin")
        self.lower = lower
        self.upper = upper
        self.counts = counts
    }

    /// The number of bins.
    public var bins: Int { counts.count }

    /// Whether the range is empty or not finite (see the type's documentation).
    public var isDegenerate: Bool { !(upper > lower) || !lower.isFinite || !upper.isFinite }

    /// The number of values added.
    public var total: UInt64 { counts.reduce(0, +) }

    /// Edge `k` (0...bins) in Double, numpy's linspace convention.
    public func edge(_ k: Int) -> Double {
        if k >= bins { return Double(upper) }
        return Double(k) * ((Double(upper) - Double(lower)) / Double(bins)) + Double(lower)
    }

    /// All `bins + 1` edges.
    public var edges: [Double] { (0...bins).map(edge) }

    /// The centres `(edge(k) + edge(k + 1)) / 2` of the bins.
    public var centres: [Double] {
        let e = edges
        return (0..<bins).map { (e[$0] + e[$0 + 1]) / 2 }
    }

    /// The bin that holds `x` (clamped; NaN is the caller's to skip).
    public func bin(of x: Float) -> Int {
        var k = 0
        Swift.withUnsafePointer(to: x) {
            Self.bins(of: UnsafeBufferPointer(start: $0, count: 1), absolute: false, lower, upper, bins, isDegenerate) { k = $0 }
        }
        return k
    }

    /// Adds values (absolute: adds |x|, for symmetric calibration on [0, amax]). NaN is skipped.
    public mutating func add(_ values: UnsafeBufferPointer<Float>, absolute: Bool) {
        let (lo, hi, n, degenerate) = (lower, upper, bins, isDegenerate)
        counts.withUnsafeMutableBufferPointer { c in
            Self.bins(of: values, absolute: absolute, lo, hi, n, degenerate) { c[$0] += 1 }
        }
    }

    /// Adds the values of an array, as the buffer-pointer `add` does.
    public mutating func add(_ values: [Float], absolute: Bool) {
        values.withUnsafeBufferPointer { add($0, absolute: absolute) }
    }

    /// Calls `count` with the bin of each non-NaN value: an estimate from the scaled offset, then
    /// corrected by one step against the exact edges (np.histogram's decrement/increment).
    @inline(__always)
    private static func bins(of values: UnsafeBufferPointer<Float>, absolute: Bool, _ lower: Float, _ upper: Float,
                             _ n: Int, _ degenerate: Bool, _ count: (Int) -> Void) {
        let lo = Double(lower), hi = Double(upper)
        let step = (hi - lo) / Double(n), scale = Double(n) / (hi - lo)
        for i in 0..<values.count {
            let f = values[i]
            if f.isNaN { continue }
            let v = Double(absolute ? Swift.abs(f) : f)
            var k = 0
            if degenerate || !(v > lo) {
                k = 0
            } else if !(v < hi) {
                k = n - 1
            } else {
                // The estimate is within one bin of the answer (both sides round by a few ulps).
                k = Swift.min(n - 1, Int((v - lo) * scale))
                if k > 0 && v < Double(k) * step + lo {
                    k -= 1
                } else if k < n - 1 && v >= Double(k + 1) * step + lo {
                    k += 1
                }
            }
            count(k)
        }
    }

    /// Adds another histogram with the same edges and bin count (throws HistogramError naming both edge sets otherwise).
    public mutating func merge(_ other: ActivationHistogram) throws {
        guard Self.same(lower, other.lower), Self.same(upper, other.upper), bins == other.bins else {
            throw HistogramError(description: "cannot merge histograms with different edges: "
                + "[\(lower), \(upper)] in \(bins) bins and [\(other.lower), \(other.upper)] in \(other.bins) bins")
        }
        for k in 0..<bins { counts[k] += other.counts[k] }
    }

    private static func same(_ a: Float, _ b: Float) -> Bool { a == b || a.bitPattern == b.bitPattern }

    private enum CodingKeys: String, CodingKey { case lower, upper, counts }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        lower = try c.decode(Float.self, forKey: .lower)
        upper = try c.decode(Float.self, forKey: .upper)
        counts = try c.decode([UInt64].self, forKey: .counts)
        guard !counts.isEmpty else {
            throw DecodingError.dataCorruptedError(forKey: .counts, in: c, debugDescription: "a histogram needs at least one bin")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(lower, forKey: .lower)
        try c.encode(upper, forKey: .upper)
        try c.encode(counts, forKey: .counts)
    }
}

/// A histogram operation refused, e.g. merging histograms with different edges.
public struct HistogramError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}
