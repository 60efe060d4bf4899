import Foundation
import VitqTensor

/// An activation operand's quantizer while a block is reconstructed: the searched
/// ``OperandQuant``, with the steps of a uniform grid learned (LSQ, Esser et al. 2020) through
/// their logarithm; twin and per-token operands keep theirs. The forward is the engine's
/// fake quantization; the backward is the straight-through estimator: dx̂/dx = 1 inside the
/// grid and 0 where the value clips, and for a uniform grid dx̂/dΔ = round(x/Δ) − x/Δ inside,
/// qmin − z or qmax − z where it clips.
public final class LearnedQuantizer: @unchecked Sendable {
    public let searched: OperandQuant
    /// Whether the steps are learned (a uniform grid and a non-zero step rate).
    public let learns: Bool
    /// log Δ of each group (uniform grids).
    var logSteps: [Double]
    var adam: AdamOptimizer?
    private(set) var uniform: TensorQuant?

    public init(_ operand: OperandQuant, stepRate: Float) {
        searched = operand
        if case let .uniform(q) = operand {
            uniform = q
            logSteps = q.scales.map { Foundation.log(Double($0)) }
            learns = stepRate > 0
            adam = learns ? AdamOptimizer(count: q.scales.count, rate: stepRate) : nil
        } else {
            logSteps = []; learns = false
        }
    }

    /// The operand with the learned steps.
    public var current: OperandQuant { uniform.map { .uniform($0) } ?? searched }

    /// x̂ of a [rows, cols] block at row stride `ld` (in place allowed); group `group` of a
    /// uniform or twin quantizer. Elements whose `keep` byte is 1 stay float (QDrop).
    func forward(_ x: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int, group: Int,
                 into y: UnsafeMutablePointer<Float>, keep: UnsafePointer<UInt8>? = nil) {
        switch current {
        case let .uniform(q):
            for r in 0..<rows { q.fakeQuantize(x + r * ld, count: cols, index: group, into: y + r * ld) }
        case let .twin(t):
            for r in 0..<rows { t[group].fakeQuantize(x + r * ld, count: cols, into: y + r * ld) }
        case let .perToken(scheme):
            precondition(ld == cols, "per-token operands are whole rows")
            PerTokenQuant.fakeQuantize(x, rows: rows, cols: cols, scheme: scheme, into: y)
        }
        guard let keep else { return }
        for r in 0..<rows { for c in 0..<cols where keep[r * cols + c] != 0 { y[r * ld + c] = x[r * ld + c] } }
    }

    /// The straight-through backward in place on `d` (dL/dx̂ in, dL/dx out) for the forward
    /// input `x`; returns dL/d(log Δ) of the group (0 unless the steps are learned).
    func backward(_ d: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, rows: Int, cols: Int, ld: Int, group: Int,
                  keep: UnsafePointer<UInt8>? = nil) -> Double {
        guard let q = uniform else { return 0 }
        let s = q.scales[group], inv = 1 / s, z = Float(q.zeroPoints[group])
        let lo = Float(q.scheme.qmin), hi = Float(q.scheme.qmax)
        var g = 0.0
        for r in 0..<rows {
            for c in 0..<cols {
                if let keep, keep[r * cols + c] != 0 { continue }
                let i = r * ld + c, u = x[i] * inv, code = u.rounded(.toNearestOrEven) + z
                if code < lo { g += Double(d[i] * (lo - z)); d[i] = 0 }
                else if code > hi { g += Double(d[i] * (hi - z)); d[i] = 0 }
                else { g += Double(d[i] * (u.rounded(.toNearestOrEven) - u)) }
            }
        }
        return learns ? g * Double(s) : 0
    }

    /// One Adam step of the log steps down `gradient` (one per group).
    func step(_ gradient: [Double]) {
        guard learns, var q = uniform else { return }
        adam!.step(&logSteps, gradient: gradient)
        q.scales = logSteps.map { Float(Foundation.exp($0)) }
        uniform = q
    }

    /// Sets the log steps (the gradient checks perturb them).
    func restore(_ saved: [Double]) {
        guard var q = uniform else { return }
        logSteps = saved
        q.scales = saved.map { Float(Foundation.exp($0)) }
        uniform = q
    }
}
