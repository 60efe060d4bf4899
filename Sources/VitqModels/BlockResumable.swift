import VitqTensor

/// A model whose forward can restart at a transformer block from the residual stream entering
/// it. The sensitivity probes quantize one op and rerun the calibration images: the float blocks
/// before that op give the stage-1 stream unchanged, so a probe restarts at the op's block
/// instead of at the pixels, with the same bits as the full forward.
public protocol BlockResumable: SearchableModel {
    /// The number of blocks (``forward(fromBlock:residual:)`` accepts 0...blockCount).
    var blockCount: Int { get }
    /// The tap (as the forward names it) whose values are the residual stream entering block `b`
    /// (`b` == ``blockCount``: the stream after the last block).
    func residualTap(block b: Int) -> String
    /// The block op `op` belongs to: its index, ``blockCount`` for the ops after the blocks (the
    /// heads), nil for the ops before them (the patch embedding).
    func block(of op: String) -> Int?
    /// The logits for the residual stream [B, T, E] entering block `b`; `observer`
    /// sees the taps of the blocks run (and, as in ``ImageClassifier/forward(_:observer:)``, an
    /// observer turns the fused inference passes off).
    func forward(fromBlock b: Int, residual: Tensor, observer: ForwardObserver?) -> Tensor
}

extension VisionTransformer: BlockResumable {
    public var blockCount: Int { blocks.count }

    public func residualTap(block b: Int) -> String { b == 0 ? "embed" : "blocks.\(b - 1)" }

    public func block(of op: String) -> Int? {
        if op.hasPrefix("head") { return blocks.count }
        let parts = op.split(separator: ".")
        guard parts.count >= 2, parts[0] == "blocks", let i = Int(parts[1]) else { return nil }
        return i
    }

    public func forward(fromBlock b: Int, residual: Tensor, observer: ForwardObserver?) -> Tensor {
        precondition((0...blocks.count).contains(b) && residual.shape.count == 3 && residual.shape[1] == config.tokens
                     && residual.shape[2] == config.embedDim, "residual \(residual.shape) for block \(b)")
        let n = residual.shape[0], x = Tensor(zeros: [n * config.tokens, config.embedDim])   // the blocks' row layout
        x.data.update(from: residual.data, count: x.count)
        return tail(x, batch: n, fromBlock: b, trace: nil, context: ForwardContext(observer: observer))
    }
}
