import Foundation
import VitqModels
import VitqTensor

/// Stage 1 of the search (ALGORITHMS.md §3): the FP forward and the task-loss backward over a
/// shard's images, keeping for every searched op its FP input, FP output and output gradient.
///
/// Store names (from the ``SearchableModel`` tap convention): linear op `X` → `X.input`,
/// `X.output`, `X.grad`; attention block `B` (`blocks.i.attn`, `layers.s.blocks.b.attn`) →
/// `B.qkv.output` (Q, K, V), `B.softmax` (P) and `B.matmul{1,2}.{output,grad}`; and for the
/// whole shard `images` (the normalised inputs) and `logits` (FP32), which the sensitivity
/// probes rerun and compare with. Without gradients (the calibrators of method `minmax`) only the
/// forward runs and only the inputs of the ops (and `images`, `logits`) are kept.
public final class CalibrationCollector: ForwardObserver {
    let store: CalibrationStore
    /// Store names to keep.
    let needed: Set<String>
    private var batchOffset = 0
    private var batchSize = 1
    private var failure: Error?

    /// Whether stage 1 runs the backward too (and keeps outputs and gradients).
    let gradients: Bool

    /// A collector for the ops in `ops` (linear op names and `<block>.matmul1/2`), and the taps
    /// `alsoTaps` (the residual streams a ``BlockResumable`` model's probes restart from).
    public init(store: CalibrationStore, ops: [String], gradients: Bool = true, alsoTaps: [String] = []) {
        self.store = store
        self.gradients = gradients
        var n: Set<String> = Set(["images", "logits"] + alsoTaps.map(Self.storeName))
        for op in ops {
            if op.hasSuffix(".matmul1") || op.hasSuffix(".matmul2") {
                let block = String(op.dropLast(".matmul1".count))
                n.insert("\(block).qkv.output")
                if op.hasSuffix("2") { n.insert("\(block).softmax") }
            } else {
                n.insert("\(op).input")
            }
            if gradients { n.insert("\(op).output"); n.insert("\(op).grad") }
        }
        needed = n
    }

    /// Runs stage 1 over the store's images in batches of `batch`, reading images with `load`
    /// (global indices → normalised [B, C, H, W]).
    public func collect(model: any SearchableModel, loss: TaskLoss, batch: Int,
                        load: (Range<Int>) throws -> Tensor, progress: ((Int) -> Void)? = nil) throws {
        var lo = store.images.lowerBound
        while lo < store.images.upperBound {
            let hi = min(lo + batch, store.images.upperBound)
            let x = try load(lo..<hi)
            batchOffset = lo - store.images.lowerBound
            batchSize = hi - lo
            let logits = gradients ? model.forwardBackward(x, loss: loss, firstImageIndex: lo, observer: self)
                                   : model.forward(x, observer: self)
            observe("images", UnsafeBufferPointer(start: x.data, count: x.count), shape: x.shape)
            observe("logits", UnsafeBufferPointer(start: logits.data, count: logits.count), shape: logits.shape)
            if let e = failure { throw e }
            progress?(hi - lo)
            lo = hi
        }
    }

    /// The store name of a tap, or nil.
    static func storeName(_ tap: String) -> String {
        switch tap {
        case "patch_embed.grad": return "patch_embed.proj.grad"
        default:
            if tap.hasSuffix(".input") || tap.hasSuffix(".grad") || tap.hasSuffix(".attn.softmax") || tap == "images" || tap == "logits" { return tap }
            return "\(tap).output"
        }
    }

    public func wants(_ name: String) -> Bool { needed.contains(Self.storeName(name)) }

    public func observe(_ name: String, _ values: UnsafeBufferPointer<Float>, shape: [Int]) {
        let b = batchSize
        // Taps are [B, ...] or [B·k, ...] (patch and token rows, Swin's windows), image-major.
        let imageShape = shape[0] == b ? Array(shape.dropFirst()) : [shape[0] / b] + shape.dropFirst()
        do {
            let t = try store.tensor(Self.storeName(name), imageShape: imageShape)
            t.image(batchOffset).update(from: values.baseAddress!, count: b * t.perImage)
            t.releasePages(images: batchOffset..<(batchOffset + b))   // a spilled tensor's slice goes to the file now
        } catch {
            failure = failure ?? error
        }
    }
}
