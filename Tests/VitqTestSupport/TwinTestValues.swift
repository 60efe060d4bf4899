import VitqTensor

/// Inputs for twin uniform quantizer tests: random values over both ranges mixed with the
/// boundaries that matter (the R1/R2 switch, halfway points of both grids, zeros, negatives,
/// values far out of range, infinities, NaN).
public enum TwinTestValues {
    /// `count` values for a quantizer with steps Δ1 and Δ1·2^shift and magnitudes up to 2^(bits−1) − 1.
    public static func make(count: Int, bits: Int, delta1: Float, shift: Int, rng: inout SeededRandom) -> [Float] {
        let qmax = Float((1 << (bits - 1)) - 1), d2 = Float(sign: .plus, exponent: shift, significand: delta1)
        let switchPoint = (qmax + 0.5) * delta1
        return (0..<count).map { _ in
            let j = Float(rng.next() % UInt64(qmax + 2))
            switch rng.next() % 16 {
            case 0: return switchPoint
            case 1: return rng.next() % 2 == 0 ? switchPoint.nextUp : switchPoint.nextDown
            case 2: return (j + 0.5) * delta1
            case 3: return -(j + 0.5) * delta1
            case 4: return (j + 0.5) * d2
            case 5: return j * (rng.next() % 2 == 0 ? delta1 : d2)
            case 6: return [0, -0.0, 1e30, -1e30, .infinity, -.infinity, .nan, Float.leastNormalMagnitude / 3, -Float.leastNormalMagnitude / 3][Int(rng.next() % 9)]
            case 7: return rng.symmetric(4 * qmax * d2)
            case 8, 9: return rng.symmetric(2 * qmax * delta1)
            default: return Float(rng.uniform()) * 1.2 * qmax * d2 - 0.17
            }
        }
    }
}
