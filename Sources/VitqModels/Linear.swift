import VitqTensor

/// A fully connected layer with PyTorch's [out, in] weight.
public struct Linear: LinearOp, @unchecked Sendable {
    public let weight: Tensor
    public let bias: Tensor?
    public var outFeatures: Int { weight.shape[0] }
    public var inFeatures: Int { weight.shape[1] }
    public var parameterCount: Int { weight.count + (bias?.count ?? 0) }

    public init(weight: Tensor, bias: Tensor?) { self.weight = weight; self.bias = bias }

    /// y[rows, out] = x[rows, in] · Wᵀ + b.
    public func forward(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        Gemm.linear(x, rows: rows, weight: weight.data, outFeatures: outFeatures, inFeatures: inFeatures,
                    bias: bias?.data, into: y)
    }
}

extension Linear {
    /// The input gradient (weight gradients are not computed).
    /// forward:  y[rows, out] = x[rows, in] · W[out, in]ᵀ + b
    /// backward: dx[rows, in] = dy[rows, out] · W[out, in]
    func backward(_ dy: UnsafePointer<Float>, rows: Int, into dx: UnsafeMutablePointer<Float>) {
        let o = outFeatures, i = inFeatures, w = weight.data
        Gemm.splitRows(rows) { r in
            Gemm.sgemm(m: r.count, n: i, k: o, a: dy + r.lowerBound * o, lda: o, b: w, ldb: i, transB: false,
                       c: dx + r.lowerBound * i, ldc: i)
        }
    }
}
