import CVitqKernels

/// How a candidate's quantized output Ô is compared with the FP output O (ALGORITHMS.md §2–3).
///
/// Every metric is kept as statistics that add over images, so shards combine exactly when
/// summed in a fixed order: MSE and Hessian are sums; cosine is the sum over images of each
/// image's cosine similarity; Hessian DPLR squares each image's first-order sum before adding;
/// Pearson keeps its sufficient statistics (n, Σo, Σô, Σoô, Σo², Σô²).
public enum SearchMetric: String, Codable, Sendable, CaseIterable {
    /// Σ (ô − o)².
    case mse
    /// Σ_images cos(o, ô), maximised (PTQ4ViT's base-PTQ metric).
    case cosine
    /// Pearson correlation over all elements of the calibration set, maximised (Liu et al.).
    case pearson
    /// Σ (∂L/∂o)² (ô − o)²: the Hessian-guided metric of PTQ4ViT with a real task-loss gradient.
    case hessian
    /// Σ_images [Σ g²(ô − o)² + (Σ g·(ô − o))²] per scale group: the diagonal of the empirical
    /// Fisher g gᵀ plus its rank-one part, i.e. diagonal plus low-rank as in FIMA-Q (Wu et al.,
    /// CVPR 2025). The diagonal alone cannot see errors that agree in sign across a group's
    /// elements (clipping), whose first-order effect on the loss adds up; the rank-one term,
    /// the squared first-order loss change of each image, does. Sums are within one image and
    /// one group (for a matmul, one head of one image or window), so shards still add exactly.
    case hessianDPLR = "hessian-dplr"

    /// The C statistic kind (``vitq_score_columns``).
    var kernelKind: Int32 {
        switch self {
        case .mse: return Int32(VITQ_SCORE_MSE)
        case .hessian: return Int32(VITQ_SCORE_HESSIAN)
        case .hessianDPLR: return Int32(VITQ_SCORE_HESSIAN_DPLR)
        case .cosine: return Int32(VITQ_SCORE_COSINE)
        case .pearson: return Int32(VITQ_SCORE_PEARSON)
        }
    }

    /// Column statistics the kernel accumulates.
    var columnStats: Int { Int(vitq_score_stat_count(kernelKind)) }

    /// Doubles per (candidate, group) once an image is folded in: MSE/Hessian/Hessian DPLR/cosine 1, Pearson 6.
    public var groupStats: Int { self == .pearson ? 6 : 1 }

    /// Folds one image's column statistics of one group (already summed over the group's
    /// columns, `count` elements) into the group's running statistics.
    public func fold(image s: UnsafePointer<Double>, count: Int, into acc: UnsafeMutablePointer<Double>) {
        switch self {
        case .mse, .hessian:
            acc[0] += s[0]
        case .hessianDPLR:
            acc[0] += s[0] + s[1] * s[1]
        case .cosine:
            let den = (s[1] * s[2]).squareRoot()
            acc[0] += den > 0 ? s[0] / den : (s[1] == s[2] ? 1 : 0)
        case .pearson:
            acc[0] += Double(count)
            for i in 0..<5 { acc[1 + i] += s[i] }
        }
    }

    /// The score of a group's total statistics; lower is better.
    public func score(_ slice: ArraySlice<Double>) -> Double {
        let s = Array(slice)
        switch self {
        case .mse, .hessian, .hessianDPLR: return s[0]
        case .cosine: return -s[0]
        case .pearson:
            let n = s[0]
            guard n > 0 else { return 0 }
            let cov = s[3] - s[1] * s[2] / n
            let va = s[4] - s[1] * s[1] / n, vb = s[5] - s[2] * s[2] / n
            let den = (va * vb).squareRoot()
            return den > 0 ? -cov / den : (va == vb ? -1 : 0)
        }
    }
}
