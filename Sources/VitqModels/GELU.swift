import Foundation
import VitqTensor

extension Ops {
    /// The backward of ``Ops/gelu(_:_:count:)`` (exact erf).
    /// forward:  g = f · Φ(f), Φ(f) = ½(1 + erf(f/√2))
    /// backward: df = dg · (Φ(f) + f · φ(f)), φ(f) = e^(−f²/2)/√(2π). `dg` and `df` may alias.
    public static func geluBackward(_ dg: UnsafePointer<Float>, f: UnsafePointer<Float>, into df: UnsafeMutablePointer<Float>, count: Int) {
        let invSqrt2: Float = 0.70710678118654752, invSqrt2Pi: Float = 0.39894228040143268
        Parallel.forChunks(count, minChunk: 4096) { r in
            for j in r {
                let v = f[j]
                let cdf = 0.5 * (1 + erf(v * invSqrt2)), pdf = exp(-0.5 * v * v) * invSqrt2Pi
                df[j] = dg[j] * (cdf + v * pdf)
            }
        }
    }
}
