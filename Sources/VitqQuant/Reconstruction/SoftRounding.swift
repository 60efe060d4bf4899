import Foundation

/// AdaRound's learned rounding of one weight [rows, cols] on a fixed grid (Nagel et al. 2020):
/// each weight is s · (clamp(⌊w/s⌋ + h(v) + z, qmin, qmax) − z) with the rectified sigmoid
/// h(v) = clamp(σ(v)(ζ − γ) + γ, 0, 1), ζ = 1.1, γ = −0.1, and the logits v learned. The
/// regulariser λ Σ (1 − |2h − 1|^β) drives every h to 0 or 1; the hard rounding is h = [v ≥ 0].
/// The logits start where h equals the fractional part of w/s, so the soft weight starts at w.
public final class SoftRounding: @unchecked Sendable {
    public static let zeta: Float = 1.1, gamma: Float = -0.1
    public let rows: Int, cols: Int
    /// The step of each row (one per row, a per-tensor step repeated).
    let steps: [Float]
    let zeros: [Float]
    let qmin: Float, qmax: Float
    /// ⌊w/s⌋ of each weight.
    let floors: [Float]
    /// The rounding logits v.
    public var logits: [Float]

    /// The rounding of `weight` [rows, cols] on the grid of `quant` (per channel or per tensor).
    public init(weight: UnsafePointer<Float>, rows: Int, cols: Int, quant: TensorQuant) {
        self.rows = rows; self.cols = cols
        steps = (0..<rows).map { quant.rowScale($0) }
        zeros = (0..<rows).map { Float(quant.zeroPoints[quant.zeroPoints.count == 1 ? 0 : $0]) }
        qmin = Float(quant.scheme.qmin); qmax = Float(quant.scheme.qmax)
        var floors = [Float](repeating: 0, count: rows * cols), logits = floors
        for r in 0..<rows {
            let s = steps[r]
            for c in 0..<cols {
                let x = weight[r * cols + c] / s, f = x.rounded(.down)
                floors[r * cols + c] = f
                let p = ((x - f) - Self.gamma) / (Self.zeta - Self.gamma)   // σ(v) that gives h = frac
                logits[r * cols + c] = Foundation.log(p / (1 - p))
            }
        }
        self.floors = floors; self.logits = logits
    }

    @inline(__always) static func sigmoid(_ v: Float) -> Float { 1 / (1 + Foundation.exp(-v)) }

    /// h(v) of weight `i`, soft or hard.
    @inline(__always) func h(_ i: Int, hard: Bool) -> Float {
        let v = logits[i]
        if hard { return v >= 0 ? 1 : 0 }
        return min(1, max(0, Self.sigmoid(v) * (Self.zeta - Self.gamma) + Self.gamma))
    }

    /// The integer of weight `i` on the grid (before the zero point is taken off).
    @inline(__always) func integer(_ i: Int, hard: Bool) -> Float {
        min(qmax, max(qmin, floors[i] + h(i, hard: hard) + zeros[i / cols]))
    }

    /// The weight [rows, cols] in float: soft (training) or hard (the rounding decided).
    public func weight(hard: Bool, into w: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            let s = steps[r], z = zeros[r]
            for c in 0..<cols { let i = r * cols + c; w[i] = (integer(i, hard: hard) - z) * s }
        }
    }

    /// dL/dv from dL/dŴ (the soft weight's gradient), plus λ times the regulariser's gradient at
    /// `beta` when given; returns the regulariser's value Σ (1 − |2h − 1|^β) (0 without `beta`).
    public func logitGradient(_ dw: UnsafePointer<Float>, lambda: Float, beta: Float?, into g: UnsafeMutablePointer<Float>) -> Double {
        var reg = 0.0
        let span = Self.zeta - Self.gamma
        for r in 0..<rows {
            let s = steps[r], z = zeros[r]
            for c in 0..<cols {
                let i = r * cols + c, sg = Self.sigmoid(logits[i]), hv = sg * span + Self.gamma
                let inside = hv > 0 && hv < 1
                let hc = min(1, max(0, hv)), q = floors[i] + hc + z
                var dh: Float = q >= qmin && q <= qmax ? dw[i] * s : 0
                if let beta {
                    let u = 2 * hc - 1, a = abs(u)
                    reg += Double(1 - Foundation.pow(a, beta))
                    if a > 0 { dh += lambda * (-beta * Foundation.pow(a, beta - 1) * (u > 0 ? 2 : -2)) }
                }
                g[i] = inside ? dh * span * sg * (1 - sg) : 0
            }
        }
        return reg
    }

    /// Σ (1 − |2h − 1|^β) over the soft h.
    public func regulariser(beta: Float) -> Double {
        var total = 0.0
        for i in 0..<logits.count { total += Double(1 - Foundation.pow(abs(2 * h(i, hard: false) - 1), beta)) }
        return total
    }

    /// The fraction of weights whose soft h is within 0.01 of 0 or 1.
    public var binarised: Double {
        var n = 0
        for i in 0..<logits.count { let v = h(i, hard: false); if v < 0.01 || v > 0.99 { n += 1 } }
        return Double(n) / Double(max(1, logits.count))
    }
}
