import Foundation

/// Adam (Kingma & Ba) over one parameter array: β1 0.9, β2 0.999, ε 1e-8, moments in Double
/// and updated element by element in a fixed order, so a run is the same bits anywhere.
public struct AdamOptimizer: Sendable {
    public let rate: Double
    var m: [Double], v: [Double]
    var t = 0
    public static let beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8

    public init(count: Int, rate: Float) {
        self.rate = Double(rate)
        m = [Double](repeating: 0, count: count); v = m
    }

    /// One step of the parameters `p` down the gradient `g`.
    public mutating func step(_ p: UnsafeMutablePointer<Float>, gradient g: UnsafePointer<Float>) {
        t += 1
        let c1 = 1 - Foundation.pow(Self.beta1, Double(t)), c2 = 1 - Foundation.pow(Self.beta2, Double(t))
        for i in 0..<m.count {
            let gi = Double(g[i])
            m[i] = Self.beta1 * m[i] + (1 - Self.beta1) * gi
            v[i] = Self.beta2 * v[i] + (1 - Self.beta2) * gi * gi
            p[i] -= Float(rate * (m[i] / c1) / ((v[i] / c2).squareRoot() + Self.epsilon))
        }
    }

    /// One step of a Double parameter array.
    public mutating func step(_ p: inout [Double], gradient g: [Double]) {
        t += 1
        let c1 = 1 - Foundation.pow(Self.beta1, Double(t)), c2 = 1 - Foundation.pow(Self.beta2, Double(t))
        for i in 0..<m.count {
            m[i] = Self.beta1 * m[i] + (1 - Self.beta1) * g[i]
            v[i] = Self.beta2 * v[i] + (1 - Self.beta2) * g[i] * g[i]
            p[i] -= rate * (m[i] / c1) / ((v[i] / c2).squareRoot() + Self.epsilon)
        }
    }
}
