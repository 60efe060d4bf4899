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
    /// y[rows, out] += x[rows, in]·Wᵀ + b (a residual add): the sum of y and exactly what
    /// ``forward(_:rows:into:)`` gives, so fusing it never changes a bit.
    func forward(_ x: UnsafePointer<Float>, rows: Int, addingInto y: UnsafeMutablePointer<Float>)
}

extension LinearOp {
    /// The unfused residual add, the default: ``forward(_:rows:into:)`` into scratch, then y += scratch.
    public func forward(_ x: UnsafePointer<Float>, rows: Int, addingInto y: UnsafeMutablePointer<Float>) {
        forwardThenAdd(x, rows: rows, into: y)
    }

    /// ``forward(_:rows:into:)`` into scratch, then y += scratch.
    public func forwardThenAdd(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        ScratchPool.shared.with(bytes: rows * outFeatures * 4) { buf in
            forward(x, rows: rows, into: buf.pointer(Float.self))
            Ops.add(y, buf.pointer(Float.self), count: rows * outFeatures)
        }
    }
}

/// A linear op that can take the LayerNorm before it, and the GELU after it, into its own passes
/// (the integer engine quantizes normalised rows straight into its packed operand and hands
/// GELU(fc1) to fc2 already packed). The model uses it only when no activation is observed, since
/// the fused ops never write the intermediate float rows.
public protocol NormFusingLinearOp: LinearOp {
    /// y = LayerNorm(x)·Wᵀ + b.
    func forward(normalizing x: UnsafePointer<Float>, with norm: LayerNorm, rows: Int, into y: UnsafeMutablePointer<Float>)
    /// y += next(GELU(LayerNorm(x)·Wᵀ + b)) when `next` can take the hand-off; false (nothing
    /// written) when it cannot, and the caller runs the ops one by one.
    func forwardMLP(normalizing x: UnsafePointer<Float>, with norm: LayerNorm, rows: Int, next: any LinearOp,
                    addingInto y: UnsafeMutablePointer<Float>) -> Bool
}
