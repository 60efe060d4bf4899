import Foundation
import VitqTensor

/// The calibration data of one unit: for each of `images` images its float input, the float
/// output the quantized unit is fitted to, and each output element's weight.
struct ReconstructionData {
    let images: Int
    let inputs: Tensor, targets: Tensor, weights: Tensor
}

/// How one unit's reconstruction went (Docs/ALGORITHMS.md §7).
public struct UnitReconstructionStats: Codable, Equatable, Sendable {
    /// The unit: `blocks.i`, `patch_embed.proj`, `head`, `head_dist`.
    public var unit: String
    /// The weighted output error on all calibration images with the searched quantizers
    /// (rounding to nearest) and with the learned ones.
    public var lossBefore: Double, lossAfter: Double
    /// Whether the learned rounding and steps were kept (they are not when they do not lower the loss).
    public var kept: Bool
    /// The share of rounding variables within 0.01 of 0 or 1 at the end.
    public var binarised: Double
    public var iterations: Int
    public var seconds: Double
    /// Whether the unit's inputs came from the quantized units before it (sequential mode).
    public var sequential = false

    public init(unit: String, lossBefore: Double, lossAfter: Double, kept: Bool, binarised: Double, iterations: Int, seconds: Double,
                sequential: Bool = false) {
        self.unit = unit; self.lossBefore = lossBefore; self.lossAfter = lossAfter; self.kept = kept
        self.binarised = binarised; self.iterations = iterations; self.seconds = seconds; self.sequential = sequential
    }
}

/// The training loop of block reconstruction, one unit at a time: Adam on the rounding logits
/// (AdaRound's regulariser after the warmup, β from 20 to 2) and on the log steps, over batches
/// drawn from a generator seeded by the recipe's seed and the unit's index alone.
enum Reconstructor {
    /// Trains `unit` on `data`; returns the loss before and after (hard rounding, all images).
    static func train(_ unit: ReconstructionUnit, name: String, data: ReconstructionData, settings: ReconstructionSettings,
                      unitIndex: Int) -> UnitReconstructionStats {
        let start = Date()
        var random = SeededRandom(seed: UInt64(settings.seed) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(unitIndex + 1))
        let n = data.images, nb = min(settings.batchImages, n, unit.capacity)
        func setWeights(hard: Bool) { for l in unit.linears { l.setWeight(hard: hard) } }
        setWeights(hard: true)
        let before = evaluate(unit, data: data, batch: nb)
        var order: [Int] = [], cursor = 0
        let batchTargets = Tensor(zeros: [nb * unit.rowsPerImage * unit.outputWidth])
        let batchWeights = Tensor(zeros: [nb * unit.rowsPerImage * unit.outputWidth])
        for it in 0..<settings.iterations {
            var picked: [Int] = []
            while picked.count < nb {
                if cursor == order.count { order = shuffled(n, &random); cursor = 0 }
                picked.append(order[cursor]); cursor += 1
            }
            load(picked, data: data, into: unit, targets: batchTargets, weights: batchWeights)
            setWeights(hard: false)
            let masks = unit.drawDropMasks(probability: settings.dropProbability, rows: nb * unit.rowsPerImage, random: &random)
            unit.forward(images: nb, masks: masks)
            _ = loss(unit, images: nb, targets: batchTargets.data, weights: batchWeights.data, gradient: true)
            let steps = unit.backward(images: nb, masks: masks)
            let beta = settings.beta(at: it)
            for l in unit.linears { _ = l.stepRounding(lambda: settings.roundingWeight, beta: beta) }
            for q in unit.quantizers { q.step(steps[ObjectIdentifier(q)] ?? [Double](repeating: 0, count: q.searched.count)) }
        }
        setWeights(hard: true)
        let after = evaluate(unit, data: data, batch: nb)
        let roundings = unit.linears.compactMap(\.rounding)
        let binarised = roundings.reduce(0.0) { $0 + $1.binarised * Double($1.logits.count) }
            / Double(max(1, roundings.reduce(0) { $0 + $1.logits.count }))
        return UnitReconstructionStats(unit: name, lossBefore: before, lossAfter: after, kept: after < before, binarised: binarised,
                                       iterations: settings.iterations, seconds: Date().timeIntervalSince(start))
    }

    /// 0..<n in the order of a Fisher–Yates shuffle drawn from `random`.
    static func shuffled(_ n: Int, _ random: inout SeededRandom) -> [Int] {
        var a = Array(0..<n)
        for i in stride(from: n - 1, to: 0, by: -1) { a.swapAt(i, Int(random.next() % UInt64(i + 1))) }
        return a
    }

    /// Copies images `picked` of `data` into the unit's input and the batch's targets and weights.
    static func load(_ picked: [Int], data: ReconstructionData, into unit: ReconstructionUnit, targets: Tensor, weights: Tensor) {
        let inStride = unit.rowsPerImage * unit.inputWidth, outStride = unit.rowsPerImage * unit.outputWidth
        for (slot, img) in picked.enumerated() {
            (unit.input.data + slot * inStride).update(from: data.inputs.data + img * inStride, count: inStride)
            (targets.data + slot * outStride).update(from: data.targets.data + img * outStride, count: outStride)
            (weights.data + slot * outStride).update(from: data.weights.data + img * outStride, count: outStride)
        }
    }

    /// Σ w (ŷ − y)² over the unit's output, per row (summed over the features, averaged over the
    /// rows); with `gradient`, dL/dŷ into the unit's output gradient.
    static func loss(_ unit: ReconstructionUnit, images: Int, targets: UnsafePointer<Float>, weights: UnsafePointer<Float>, gradient: Bool) -> Double {
        let rows = images * unit.rowsPerImage, count = rows * unit.outputWidth
        let y = unit.output.data, d = unit.outputGradient.data
        var total = 0.0
        let scale = 2 / Float(rows)
        for i in 0..<count {
            let e = y[i] - targets[i]
            total += Double(weights[i]) * Double(e) * Double(e)
            if gradient { d[i] = scale * weights[i] * e }
        }
        return total / Double(rows)
    }

    /// The unit's outputs [N · rows, out] on every image of `data`, with its current weights.
    static func outputs(_ unit: ReconstructionUnit, data: ReconstructionData, batch: Int) -> Tensor {
        let outStride = unit.rowsPerImage * unit.outputWidth
        let scratch = Tensor(zeros: [batch * outStride]), out = Tensor(zeros: [data.images * outStride])
        var lo = 0
        while lo < data.images {
            let hi = min(lo + batch, data.images)
            load(Array(lo..<hi), data: data, into: unit, targets: scratch, weights: scratch)
            unit.forward(images: hi - lo, masks: [:])
            (out.data + lo * outStride).update(from: unit.output.data, count: (hi - lo) * outStride)
            lo = hi
        }
        return out
    }

    /// The loss over every image of `data`, in batches of `batch`, with the unit's current weights.
    static func evaluate(_ unit: ReconstructionUnit, data: ReconstructionData, batch: Int) -> Double {
        let outStride = unit.rowsPerImage * unit.outputWidth
        let targets = Tensor(zeros: [batch * outStride]), weights = Tensor(zeros: [batch * outStride])
        var total = 0.0, lo = 0
        while lo < data.images {
            let hi = min(lo + batch, data.images)
            load(Array(lo..<hi), data: data, into: unit, targets: targets, weights: weights)
            unit.forward(images: hi - lo, masks: [:])
            total += loss(unit, images: hi - lo, targets: targets.data, weights: weights.data, gradient: false) * Double(hi - lo)
            lo = hi
        }
        return total / Double(data.images)
    }
}
