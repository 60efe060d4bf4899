import VitqTensor

/// LayerNorm over the last dimension.
public struct LayerNorm: @unchecked Sendable {
    public let weight: Tensor
    public let bias: Tensor
    public let eps: Float

    public init(weight: Tensor, bias: Tensor, eps: Float) { self.weight = weight; self.bias = bias; self.eps = eps }

    public init(_ loader: StrictTensorLoader, _ prefix: String, dim: Int, eps: Float) throws {
        weight = try loader.load("\(prefix).weight", [dim])
        bias = try loader.load("\(prefix).bias", [dim])
        self.eps = eps
    }

    public func forward(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        Ops.layerNorm(x, y, gamma: weight.data, beta: bias.data, rows: rows, dim: weight.count, eps: eps)
    }
}

extension LayerNorm {
    /// The input gradient (weight gradients are not computed); reductions in Double, split by rows across ``Parallel/threads``.
    /// forward:  y[r, :] = γ ⊙ x̂ + β with x̂ = (x[r, :] − μ_r) · rstd_r, rstd_r = 1/√(var_r + eps)
    /// backward: dx[r, :] += rstd_r · (d̂ − mean(d̂) − x̂ · mean(d̂ ⊙ x̂)), d̂ = dy[r, :] ⊙ γ
    /// `x` is the forward input [rows, dim]; the result is added to `dx` (the residual stream's gradient).
    /// Rows whose dy is all zero are skipped.
    public func backward(_ dy: UnsafePointer<Float>, x: UnsafePointer<Float>, rows: Int, accumulateInto dx: UnsafeMutablePointer<Float>) {
        let dim = weight.count, gamma = weight.data, eps = Double(self.eps)
        Parallel.forChunks(rows, minChunk: 16) { range in
            var xhat = [Double](repeating: 0, count: dim), dhat = [Double](repeating: 0, count: dim)
            for r in range {
                let xr = x + r * dim, dyr = dy + r * dim, dxr = dx + r * dim
                if !(0..<dim).contains(where: { dyr[$0] != 0 }) { continue }
                var mean = 0.0
                for j in 0..<dim { mean += Double(xr[j]) }
                mean /= Double(dim)
                var variance = 0.0
                for j in 0..<dim { let d = Double(xr[j]) - mean; variance += d * d }
                let rstd = 1 / (variance / Double(dim) + eps).squareRoot()
                var sumD = 0.0, sumDX = 0.0
                for j in 0..<dim {
                    xhat[j] = (Double(xr[j]) - mean) * rstd
                    dhat[j] = Double(dyr[j]) * Double(gamma[j])
                    sumD += dhat[j]; sumDX += dhat[j] * xhat[j]
                }
                let meanD = sumD / Double(dim), meanDX = sumDX / Double(dim)
                for j in 0..<dim { dxr[j] += Float(rstd * (dhat[j] - meanD - xhat[j] * meanDX)) }
            }
        }
    }
}
