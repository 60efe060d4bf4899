/// Overflow-safe size arithmetic for sizes read from a file, a flag or the wire.
public enum CheckedSize {
    /// The product of `factors`, or nil when one is negative or the product of the non-zero
    /// factors overflows `Int` (so that `reduce(1, *)` over them, in any order, cannot trap).
    /// The empty product is 1.
    public static func product(_ factors: [Int]) -> Int? {
        var p = 1, zero = false
        for f in factors {
            guard f >= 0 else { return nil }
            if f == 0 { zero = true; continue }
            let (q, overflow) = p.multipliedReportingOverflow(by: f)
            if overflow { return nil }
            p = q
        }
        return zero ? 0 : p
    }

    /// The sum of `terms`, or nil when one is negative or the sum overflows `Int`.
    public static func sum(_ terms: [Int]) -> Int? {
        var s = 0
        for t in terms {
            guard t >= 0 else { return nil }
            let (r, overflow) = s.addingReportingOverflow(t)
            if overflow { return nil }
            s = r
        }
        return s
    }
}
