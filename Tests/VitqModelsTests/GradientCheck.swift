@_spi(Testing) import VitqModels
import VitqTensor

/// A gradient against finite differences along one direction.
enum GradientCheck {
    /// ⟨grad, direction⟩ and the derivative of `loss(δ)` (the loss with the op output moved by
    /// δ·direction) at 0: central differences at `step` and `step`/2, Richardson-extrapolated so
    /// the step² error cancels. Returns both and their relative difference.
    static func compare(grad: [Float], direction: [Double], step: Double,
                        loss: (Double) -> Double) -> (analytic: Double, numeric: Double, relative: Double) {
        func central(_ h: Double) -> Double { (loss(h) - loss(-h)) / (2 * h) }
        let numeric = (4 * central(step / 2) - central(step)) / 3
        let analytic = zip(grad, direction).reduce(0) { $0 + Double($1.0) * $1.1 }
        return (analytic, numeric, abs(numeric - analytic) / max(abs(analytic), 1e-12))
    }

    /// ``compare(grad:direction:step:loss:)`` with the loss the cross-entropy against `targets`
    /// of `logits(hook)`, the hook moving op `op`'s output by δ·direction.
    static func compare(op: String, grad: [Float], direction: [Double], step: Double, targets: [[Double]],
                        logits: (@escaping (String, UnsafeMutablePointer<Float>, [Int]) -> Void) -> Tensor)
        -> (analytic: Double, numeric: Double, relative: Double) {
        compare(grad: grad, direction: direction, step: step) { delta in
            let z = logits { name, p, _ in
                guard name == op else { return }
                for j in 0..<direction.count { p[j] += Float(delta * direction[j]) }
            }
            return TaskLoss.crossEntropy(logits: z, targets: targets)
        }
    }
}
