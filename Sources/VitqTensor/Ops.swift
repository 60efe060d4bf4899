import CVitqKernels

/// The elementwise and row-wise fp32 ops of a transformer, on raw buffers, split across threads.
///
/// Each calls a dispatched C kernel (AVX2 or scalar reference) on contiguous row blocks.
public enum Ops {
    /// LayerNorm over the last dimension of a [rows, dim] buffer. `x` and `y` may alias.
    public static func layerNorm(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                                 gamma: UnsafePointer<Float>, beta: UnsafePointer<Float>,
                                 rows: Int, dim: Int, eps: Float) {
        Parallel.forChunks(rows, minChunk: 32) { r in
            vitq_layernorm_f32(x + r.lowerBound * dim, y + r.lowerBound * dim, gamma, beta,
                               Int64(r.count), Int64(dim), eps)
        }
    }

    /// Softmax in place over `rows` contiguous rows of length `n`, on the calling thread (attention
    /// calls it inside its own parallel loop over images and heads).
    public static func softmaxSerial(_ x: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
        vitq_softmax_f32(x, Int64(rows), Int64(n), Int64(n))
    }

    /// Exact-erf GELU of `count` values. `x` and `y` may alias.
    public static func gelu(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
        Parallel.forChunks(count, minChunk: 4096) { r in
            vitq_gelu_f32(x + r.lowerBound, y + r.lowerBound, Int64(r.count))
        }
    }

    /// y += x over `count` values.
    public static func add(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count: Int) {
        Parallel.forChunks(count, minChunk: 8192) { r in
            vitq_add_f32(y + r.lowerBound, x + r.lowerBound, Int64(r.count))
        }
    }

    /// x[r, c] *= m[c] for each of `rows` contiguous rows of `cols` values.
    public static func scaleColumns(_ x: UnsafeMutablePointer<Float>, rows: Int, by m: UnsafePointer<Float>, cols: Int) {
        Parallel.forChunks(rows, minChunk: 64) { r in
            for i in r {
                let row = x + i * cols
                for c in 0..<cols { row[c] *= m[c] }
            }
        }
    }

    /// max |x| over `rows` rows of `cols` values at row stride `ld` (on the calling thread).
    public static func maxAbs(_ x: UnsafePointer<Float>, rows: Int = 1, cols: Int, ld: Int = 0) -> Float {
        var m: Float = 0
        for r in 0..<rows { for j in 0..<cols { m = max(m, abs(x[r * ld + j])) } }
        return m
    }

    /// y[r, :] += bias for each of `rows` contiguous rows of length n (on the calling thread).
    public static func addBias(_ y: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>, rows: Int, n: Int) {
        vitq_add_bias_f32(y, bias, Int64(rows), Int64(n), Int64(n))
    }

    /// Rearranges images [B, C, H, W] (square) into patch rows [B·(H/p)², C·p·p] in (c, ky, kx)
    /// order, rows (image, y, x): the patch embedding as a GEMM (ViT and Swin).
    public static func im2col(_ images: Tensor, patch p: Int, into cols: Tensor) {
        let b = images.shape[0], ch = images.shape[1], hw = images.shape[2], g = hw / p
        Parallel.forChunks(b * g, minChunk: 4) { range in
            for bg in range {
                let bi = bg / g, py = bg % g
                for px in 0..<g {
                    var dst = cols.data + ((bi * g + py) * g + px) * ch * p * p
                    for c in 0..<ch {
                        for ky in 0..<p {
                            dst.update(from: images.data + ((bi * ch + c) * hw + py * p + ky) * hw + px * p, count: p)
                            dst += p
                        }
                    }
                }
            }
        }
    }
}
