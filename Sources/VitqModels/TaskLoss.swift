import Foundation
import VitqTensor

/// The task loss whose gradient dL/dO weights the Hessian-guided metric.
public enum TaskLoss: Sendable, Equatable {
    /// Cross-entropy against the FP model's own top-1 (empirical Fisher). Sum over images.
    case fisherArgmax
    /// Mean over `samples` labels drawn from the FP softmax (true Fisher), seeded. Sum over images.
    case fisherSampled(samples: Int, seed: UInt64)
    /// PTQ4ViT's official KL(softmax(z_fp) ‖ softmax(z)) evaluated at the FP model (gradient ≈ 0), for comparison.
    case ptq4vitKL

    /// Parses "fisher-argmax", "fisher-sampled", "ptq4vit-kl" (samples/seed given separately).
    public init?(name: String, samples: Int, seed: UInt64) {
        switch name {
        case "fisher-argmax": self = .fisherArgmax
        case "fisher-sampled": self = .fisherSampled(samples: samples, seed: seed)
        case "ptq4vit-kl": self = .ptq4vitKL
        default: return nil
        }
    }

    /// The command-line name ("fisher-argmax", "fisher-sampled" or "ptq4vit-kl").
    public var name: String {
        switch self {
        case .fisherArgmax: "fisher-argmax"
        case .fisherSampled: "fisher-sampled"
        case .ptq4vitKL: "ptq4vit-kl"
        }
    }
}

/// The gradient of a ``TaskLoss`` with respect to the logits.
enum TaskLossGradient {
    /// softmax of one row of logits, in Double.
    static func softmax(_ z: UnsafePointer<Float>, count n: Int) -> [Double] {
        var m = -Double.infinity
        for j in 0..<n { m = max(m, Double(z[j])) }
        var p = (0..<n).map { exp(Double(z[$0]) - m) }
        let s = p.reduce(0, +)
        for j in 0..<n { p[j] /= s }
        return p
    }

    /// Index of the largest logit (first on ties, like torch.argmax).
    static func argmax(_ z: UnsafePointer<Float>, count n: Int) -> Int {
        var best = 0
        for j in 1..<n where z[j] > z[best] { best = j }
        return best
    }

    /// The generator for the sampled labels of global image `g`: a function of (seed, g) only.
    static func sampler(seed: UInt64, image g: Int) -> SeededRandom {
        var a = SeededRandom(seed: seed)
        var b = SeededRandom(seed: a.next() ^ UInt64(truncatingIfNeeded: g))
        return SeededRandom(seed: b.next())
    }

    /// A draw from the categorical distribution `p`.
    static func sample(_ p: [Double], _ rng: inout SeededRandom) -> Int {
        let u = rng.uniform()
        var c = 0.0
        for (j, pj) in p.enumerated() {
            c += pj
            if u < c { return j }
        }
        return p.lastIndex(where: { $0 > 0 }) ?? p.count - 1
    }

    /// The target distribution t_i of each image for the cross-entropy losses: dL/dz_i = softmax(z_i) − t_i.
    static func targets(_ loss: TaskLoss, logits z: Tensor, firstImageIndex: Int) -> [[Double]] {
        let b = z.shape[0], n = z.shape[1]
        return (0..<b).map { i in
            let zi = z.data + i * n
            var t = [Double](repeating: 0, count: n)
            switch loss {
            case .fisherArgmax:
                t[argmax(zi, count: n)] = 1
            case let .fisherSampled(samples, seed):
                precondition(samples > 0, "fisher-sampled needs at least one sample")
                let p = softmax(zi, count: n)
                var rng = sampler(seed: seed, image: firstImageIndex + i)
                for _ in 0..<samples { t[sample(p, &rng)] += 1 / Double(samples) }
            case .ptq4vitKL:
                preconditionFailure("ptq4vit-kl has no label targets")
            }
            return t
        }
    }

    /// dL/dz [B, classes] for `loss` at the FP logits `z`. For ptq4vit-kl, `recompute` gives the
    /// logits of a second evaluation of the same FP model (the "quantized" side of the official code).
    static func gradient(_ loss: TaskLoss, logits z: Tensor, firstImageIndex: Int,
                         recompute: () -> Tensor) -> Tensor {
        let b = z.shape[0], n = z.shape[1]
        let g = Tensor(zeros: z.shape)
        switch loss {
        case .fisherArgmax, .fisherSampled:
            let t = targets(loss, logits: z, firstImageIndex: firstImageIndex)
            for i in 0..<b {
                let p = softmax(z.data + i * n, count: n)
                for j in 0..<n { g.data[i * n + j] = Float(p[j] - t[i][j]) }
            }
        case .ptq4vitKL:
            // KL(softmax(z_fp) ‖ softmax(z)) / B with z from a second forward: dKL/dz = (softmax(z) − softmax(z_fp)) / B.
            let zq = recompute()
            precondition(zq.shape == z.shape, "recomputed logits \(zq.shape) vs \(z.shape)")
            for i in 0..<b {
                let pq = softmax(zq.data + i * n, count: n), pfp = softmax(z.data + i * n, count: n)
                for j in 0..<n { g.data[i * n + j] = Float((pq[j] - pfp[j]) / Double(b)) }
            }
        }
        return g
    }

    /// Σ_i Σ_j −t_ij · log softmax(z_i)_j in Double: the loss whose gradient ``gradient`` returns
    /// for the cross-entropy losses (with the targets held fixed).
    static func crossEntropy(logits z: Tensor, targets t: [[Double]]) -> Double {
        let b = z.shape[0], n = z.shape[1]
        var total = 0.0
        for i in 0..<b {
            let zi = z.data + i * n
            var m = -Double.infinity
            for j in 0..<n { m = max(m, Double(zi[j])) }
            var s = 0.0
            for j in 0..<n { s += exp(Double(zi[j]) - m) }
            let lse = m + log(s)
            for j in 0..<n where t[i][j] != 0 { total -= t[i][j] * (Double(zi[j]) - lse) }
        }
        return total
    }
}
