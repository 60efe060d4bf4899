import Foundation
import VitqModels
import VitqTensor

/// The `search` method end to end in one process: stage 1 per shard, then stage 2 op by op
/// through a ``SearchExecutor``, then the quantized network. The distributed coordinator runs
/// the same ``ScaleSearch`` with workers as the executor.
public enum SearchCalibration {
    /// The ops a recipe searches, in forward order: linear ops (patch embedding and heads when
    /// the recipe quantizes them) and each block's two attention products.
    public static func ops(model: any SearchableModel, recipe: Recipe) -> [String] {
        var ops: [String] = []
        for (name, _) in model.linearOps {
            if name == "patch_embed.proj" && !recipe.quantizePatchEmbed { continue }
            if name.hasPrefix("head") && !recipe.quantizeHead { continue }
            if name.hasSuffix(".attn.proj") {
                let block = String(name.dropLast(".proj".count))
                ops += ["\(block).matmul1", "\(block).matmul2"]
            }
            ops.append(name)
        }
        return ops
    }

    /// The per-channel input ranges ``ChannelSmoothing`` needs when the recipe has `smooth_alpha`
    /// or `gelu_smooth_alpha` (nil otherwise), over the calibration images taken shard by shard,
    /// so that they are the same bits in any process.
    public static func smoothingRanges(_ model: any SearchableModel, recipe: Recipe, calib: Range<Int>,
                                       load: (Range<Int>) throws -> Tensor) throws -> [String: [Float]]? {
        guard recipe.smoothsChannels else { return nil }
        let smoothable = try smoothable(model, recipe: recipe)
        let ops = smoothable.smoothedOps(layerNorm: recipe.smoothAlpha > 0, activation: recipe.geluSmoothAlpha > 0)
        return try Gemm.reproducible { try ChannelSmoothing.inputRanges(smoothable, ops: ops, images: calib, batch: recipe.shardImages, load: load) }
    }

    /// The model the search runs on: `model`, smoothed when `ranges` are given.
    public static func searchModel(_ model: any SearchableModel, recipe: Recipe, ranges: [String: [Float]]?) throws -> any SearchableModel {
        guard let ranges, recipe.smoothsChannels else { return model }
        return try smoothable(model, recipe: recipe).smoothed(ranges: ranges, alpha: recipe.smoothAlpha,
                                                              activationAlpha: recipe.geluSmoothAlpha, center: recipe.smoothCenter)
    }

    /// Channel smoothing needs a family that says where its scales fold (ViT/DeiT and the
    /// torch-vit family); Swin's windows and patch merging are not covered.
    static func smoothable(_ model: any SearchableModel, recipe: Recipe) throws -> any ChannelSmoothable {
        guard let smoothable = model as? any ChannelSmoothable else {
            let key = recipe.smoothAlpha > 0 ? "smooth_alpha" : "gelu_smooth_alpha"
            throw RecipeError("recipe \(recipe.name)", "key '\(key)': channel smoothing is implemented for ViT/DeiT and torch-vit, not \(model.familyName)")
        }
        return smoothable
    }

    /// The fixed shards of `images`: consecutive runs of `recipe.shardImages`.
    public static func shards(_ images: Range<Int>, recipe: Recipe) -> [Range<Int>] {
        stride(from: images.lowerBound, to: images.upperBound, by: recipe.shardImages).map {
            $0..<min($0 + recipe.shardImages, images.upperBound)
        }
    }

    /// The task loss of the recipe.
    public static func loss(_ recipe: Recipe) -> TaskLoss {
        TaskLoss(name: recipe.gradient, samples: recipe.gradientSamples, seed: UInt64(recipe.gradientSeed))!
    }

    /// Stage 1 for one shard: FP forward and backward (the forward alone for method `minmax`)
    /// of the whole shard as one batch. The
    /// shard, not a batch option, fixes every product's shape, so the collected tensors (and the
    /// model) are the same bits whichever process or thread count collects them.
    public static func collect(model: any SearchableModel, recipe: Recipe, shard: Range<Int>,
                               budget: MemoryBudget, spillDirectory: String,
                               load: (Range<Int>) throws -> Tensor, progress: ((Int) -> Void)? = nil) throws -> CandidateScorer {
        let store = CalibrationStore(images: shard, budget: budget, spillDirectory: spillDirectory)
        let resumable = (model as? any BlockResumable).map { m in (0...m.blockCount).map { m.residualTap(block: $0) } } ?? []
        let collector = CalibrationCollector(store: store, ops: ops(model: model, recipe: recipe), gradients: recipe.method == "search",
                                             alsoTaps: SensitivityAnalysis.applies(to: recipe) || recipe.method != "search" || recipe.reconstruction != nil ? resumable : [])
        try Gemm.reproducible { try collector.collect(model: model, loss: loss(recipe), batch: max(1, shard.count), load: load, progress: progress) }
        return CandidateScorer(model: model, store: store)
    }

    /// Stage 2 over every op: the decisions, by op. Ops in `done` (replayed from a journal)
    /// are not searched again. Up to `concurrency` ops are searched at once, each on its own
    /// thread (ops are independent, so the decisions do not depend on it); `onDecision` is
    /// called for each new decision, from the thread that made it. With the recipe's
    /// `keep_float: k`, the k linear ops with the largest relative output error are left out
    /// (they stay in float: Wu et al.'s partial quantization).
    ///
    /// With `mixed_precision`, every op is searched at each candidate width (decisions tagged
    /// with it, ``OpDecision/bits``), then ``MixedPrecision`` allocates the widths; its report
    /// comes back beside the decisions.
    public static func search(model: any SearchableModel, recipe: Recipe, executor: SearchExecutor, concurrency: Int = 1,
                              done: [OpDecision] = [], onDecision: (@Sendable (OpDecision) -> Void)? = nil) throws -> SearchOutcome {
        guard recipe.mixedPrecision != nil else {
            return SearchOutcome(decisions: try searchOps(model: model, recipe: recipe, executor: executor, concurrency: concurrency,
                                                          done: done, onDecision: onDecision))
        }
        var perWidth: [Int: [String: OpDecision]] = [:]
        for b in recipe.candidateBits {
            let replay = done.filter { $0.bits == b }.map { d -> OpDecision in var d = d; d.bits = nil; return d }
            let tagged: (@Sendable (OpDecision) -> Void)? = onDecision.map { f in { d in var d = d; d.bits = b; f(d) } }
            var atWidth = recipe.atWidth(b)
            atWidth.keepFloat = 0   // every op is decided at every width; `keep_float: k` applies to the allocation
            perWidth[b] = try searchOps(model: model, recipe: atWidth, executor: executor, concurrency: concurrency,
                                        done: replay, onDecision: tagged).mapValues { d in var d = d; d.bits = b; return d }
        }
        let (decisions, report) = try MixedPrecision.allocate(model: model, recipe: recipe, perWidth: perWidth, executor: executor)
        return SearchOutcome(decisions: keepingWorstInFloat(decisions, count: recipe.keepFloat), mixedPrecision: report)
    }

    /// The number of op searches a recipe runs (each op once per mixed-precision width).
    public static func searchCount(model: any SearchableModel, recipe: Recipe) -> Int {
        ops(model: model, recipe: recipe).count * (recipe.mixedPrecision == nil ? 1 : recipe.candidateBits.count)
    }

    /// Stage 2 over every op at the recipe's widths, then `keep_float: k`.
    static func searchOps(model: any SearchableModel, recipe: Recipe, executor: SearchExecutor, concurrency: Int,
                          done: [OpDecision], onDecision: (@Sendable (OpDecision) -> Void)?) throws -> [String: OpDecision] {
        let search = ScaleSearch(model: model, settingsFor: { recipe.forOp($0).search }, executor: executor)
        let todo = ops(model: model, recipe: recipe).filter { op in !done.contains { $0.op == op } }
        let queue = OpQueue(todo, done: done)
        let work: @Sendable () -> Void = {
            while let op = queue.next() {
                do {
                    let d = try search.search(op)
                    queue.finish(d)
                    onDecision?(d)
                } catch { queue.fail(error) }
            }
        }
        let threads = max(1, min(concurrency, todo.count))
        if threads == 1 { work() } else {
            let group = DispatchGroup()
            for _ in 0..<threads {
                group.enter()
                let t = Thread { work(); group.leave() }
                t.stackSize = 8 << 20
                t.start()
            }
            group.wait()
        }
        return keepingWorstInFloat(try queue.result(), count: recipe.keepFloat)
    }

    /// `decisions` without the `count` linear ops of the largest relative output error.
    static func keepingWorstInFloat(_ decisions: [String: OpDecision], count: Int) -> [String: OpDecision] {
        var decisions = decisions
        let ranked = decisions.values.filter { $0.relativeError != nil }
            .sorted { ($0.relativeError!, $1.op) > ($1.relativeError!, $0.op) }
        for d in ranked.prefix(count) { decisions[d.op] = nil }
        return decisions
    }

    /// The quantized network of a set of decisions (ops without one stay in float).
    public static func network(model: any SearchableModel, decisions: [String: OpDecision]) -> QuantizedNetwork {
        var weights: [String: TensorQuant] = [:], inputs: [String: OperandQuant] = [:], biases: [String: [Float]] = [:]
        for (name, _) in model.linearOps {
            guard let d = decisions[name] else { continue }
            weights[name] = d.quantizers[0].uniform
            inputs[name] = d.quantizers[1]
            if let b = d.bias { biases[name] = b }
        }
        // Each block's attention quantizers, for the blocks both of whose products were searched.
        var attention: [String: AttentionQuant] = [:]
        for block in model.attentionBlocks {
            guard let qk = decisions["\(block).matmul1"], let pv = decisions["\(block).matmul2"] else { continue }
            attention[block] = AttentionQuant(q: qk.quantizers[0].uniform, k: qk.quantizers[1].uniform, probs: pv.quantizers[0], v: pv.quantizers[1].uniform)
        }
        return QuantizedNetwork(float: model, weights: weights, inputs: inputs, attention: attention, biases: biases)
    }
}

/// What stage 2 decided: a decision per quantized op, and the mixed-precision allocation's
/// report when the recipe has one.
public struct SearchOutcome: Sendable {
    public var decisions: [String: OpDecision]
    public var mixedPrecision: MixedPrecisionReport?
    public init(decisions: [String: OpDecision], mixedPrecision: MixedPrecisionReport? = nil) {
        self.decisions = decisions; self.mixedPrecision = mixedPrecision
    }
}

/// The ops left to search, handed out one at a time to search threads, and their decisions.
private final class OpQueue: @unchecked Sendable {
    private let lock = NSLock()
    private let ops: [String]
    private var nextIndex = 0
    private var decisions: [String: OpDecision] = [:]
    private var failure: Error?

    init(_ ops: [String], done: [OpDecision]) {
        self.ops = ops
        for d in done { decisions[d.op] = d }
    }

    /// The next op, or nil when all are handed out or one failed.
    func next() -> String? {
        lock.withLock {
            guard failure == nil, nextIndex < ops.count else { return nil }
            nextIndex += 1
            return ops[nextIndex - 1]
        }
    }

    func finish(_ d: OpDecision) { lock.withLock { decisions[d.op] = d } }
    func fail(_ e: Error) { lock.withLock { if failure == nil { failure = e } } }

    /// Every decision, or the first failure.
    func result() throws -> [String: OpDecision] {
        try lock.withLock {
            if let failure { throw failure }
            return decisions
        }
    }
}
