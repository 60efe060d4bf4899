import VitqTensor

/// A matrix-product layer of the network, y = x·Wᵀ + b: run in float (``Linear``), in integers
/// or fake-quantized (VitqQuant). The model calls only this, so every variant runs the same graph.
public protocol LinearOp: Sendable {
    var inFeatures: Int { get }
    var outFeatures: Int { get }
    /// Weights plus biases.
    var parameterCount: Int { get }
    /// y[rows, out] = x[rows, in]·Wᵀ + b. Threaded across ``Parallel/threads``.
    func forward(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>)
}

/// One attention head of one image: ctx = softmax(scale · q·kᵀ)·v, in float or quantized.
public protocol AttentionKernel: Sendable {
    /// Per-thread scratch for ``attend``; nil when none is needed.
    func makeScratch(tokens: Int, headDim: Int) -> AnyObject?
    /// Writes the probabilities [t, t] to `probs` and ctx [t, headDim] (row stride ldc) for head `head`.
    /// q, k and v are [t, headDim] at row stride `ld`. `scoreBias` [t, t], when given, is added to
    /// the scaled scores before the softmax (Swin's relative position bias and shift mask).
    func attend(head: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ld: Int,
                tokens t: Int, headDim: Int, scale: Float, scoreBias: UnsafePointer<Float>?, probs: UnsafeMutablePointer<Float>,
                ctx: UnsafeMutablePointer<Float>, ldc: Int, scratch: AnyObject?)
}

extension Ops {
    /// scores[t, t] += bias[t, t] when a bias is given.
    public static func addScoreBias(_ scores: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>?, tokens t: Int) {
        guard let bias else { return }
        for i in 0..<(t * t) { scores[i] += bias[i] }
    }
}

/// fp32 attention: two sgemms and a softmax in between.
public struct FloatAttention: AttentionKernel {
    public init() {}
    public func makeScratch(tokens: Int, headDim: Int) -> AnyObject? { nil }
    public func attend(head: Int, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>, ld: Int,
                       tokens t: Int, headDim: Int, scale: Float, scoreBias: UnsafePointer<Float>?, probs: UnsafeMutablePointer<Float>,
                       ctx: UnsafeMutablePointer<Float>, ldc: Int, scratch: AnyObject?) {
        Gemm.sgemm(m: t, n: t, k: headDim, alpha: scale, a: q, lda: ld, b: k, ldb: ld, transB: true, c: probs, ldc: t)
        Ops.addScoreBias(probs, scoreBias, tokens: t)
        Ops.softmaxSerial(probs, rows: t, n: t)
        Gemm.sgemm(m: t, n: headDim, k: t, a: probs, lda: t, b: v, ldb: ld, transB: false, c: ctx, ldc: ldc)
    }
}
