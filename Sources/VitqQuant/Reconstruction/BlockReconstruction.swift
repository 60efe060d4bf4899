import Foundation
import VitqModels
import VitqTensor

/// Sequential mode's quantized residual stream between units.
final class QuantizedStream { var tensor: Tensor? }

/// Block reconstruction in parallel mode (Docs/ALGORITHMS.md §7): the patch embedding, each
/// transformer block and each head are units, each fitted on its float inputs from stage 1 to
/// its float outputs, so every unit is independent of the others. The outcome turns into plain
/// integer weights and scales (``apply(_:model:decisions:)``): nothing new at inference.
public enum BlockReconstruction {
    /// The units of `model` in forward order: `patch_embed.proj`, `blocks.i`, `head`, `head_dist`
    /// (the linear ones only when they are quantized).
    public static func units(model: any SearchableModel, decisions: [String: OpDecision]) throws -> [String] {
        guard let vit = model as? VisionTransformer else { throw unsupported(model) }
        var units = decisions["patch_embed.proj"] == nil ? [] : ["patch_embed.proj"]
        units += (0..<vit.blocks.count).map { "blocks.\($0)" }
        for head in ["head", "head_dist"] where decisions[head] != nil { units.append(head) }
        return units
    }

    /// Refuses, before any work, a recipe with reconstruction for a family it is not built for.
    public static func check(_ recipe: Recipe, model: any SearchableModel) throws {
        if recipe.reconstruction != nil && !(model is VisionTransformer) { throw unsupported(model, recipe: recipe.name) }
    }

    static func unsupported(_ model: any SearchableModel, recipe: String = "recipe") -> RecipeError {
        RecipeError(recipe, "key 'reconstruction': block reconstruction is implemented for ViT/DeiT, not \(model.familyName)")
    }

    /// Reconstructs every unit of `model` (the searched float model) from the decisions of the
    /// search and stage 1's data in `stores` (the shards, in image order), one unit after another.
    public static func run(model: any SearchableModel, decisions: [String: OpDecision], stores: [CalibrationStore],
                           settings: ReconstructionSettings, progress: ((UnitReconstructionStats) -> Void)? = nil) throws -> ReconstructionOutcome {
        var outcome = ReconstructionOutcome()
        let stream = settings.mode == .sequential ? QuantizedStream() : nil
        for task in try tasks(model: model, decisions: decisions) {
            let one = try stream == nil ? reconstruct(task, model: model, stores: stores, settings: settings) : Gemm.reproducible {
                try reconstruct(task.unit, index: task.index, model: model, decisions: decisions, stores: stores, settings: settings, stream: stream)
            }
            outcome.merge(one)
            progress?(one.units[0])
        }
        return outcome
    }

    /// The units of `model` as tasks of work, in forward order, each with its ops' decisions.
    public static func tasks(model: any SearchableModel, decisions: [String: OpDecision]) throws -> [ReconstructionTask] {
        try units(model: model, decisions: decisions).enumerated().map { ReconstructionTask(unit: $1, index: $0, from: decisions) }
    }

    /// One parallel-mode unit on the float inputs of stage 1 (`stores`: every shard, in image
    /// order): the one implementation behind the in-process run and a worker's TASK.
    public static func reconstruct(_ task: ReconstructionTask, model: any SearchableModel, stores: [CalibrationStore],
                                   settings: ReconstructionSettings) throws -> ReconstructionOutcome {
        let decisions = Dictionary(task.decisions.map { ($0.op, $0) }) { a, _ in a }
        return try Gemm.reproducible {
            try reconstruct(task.unit, index: task.index, model: model, decisions: decisions, stores: stores, settings: settings, stream: nil)
        }
    }

    /// Why a worker cannot run `task` on `model` (nil: it can): the unit must be one of the
    /// model's, at its place in forward order, and every decision must be of one of its ops.
    public static func problem(_ task: ReconstructionTask, model: any SearchableModel) -> String? {
        guard let vit = model as? VisionTransformer else { return unsupported(model).description }
        let linear = Set(vit.linearOps.map(\.name))
        let isBlock = vit.blocks.indices.contains { "blocks.\($0)" == task.unit }
        guard isBlock || (["patch_embed.proj", "head", "head_dist"].contains(task.unit) && linear.contains(task.unit)) else {
            return "reconstruction unit '\(task.unit)' is not a unit of this model"
        }
        // A block's index is its own, plus one when the patch embedding is a unit before it.
        let block = isBlock ? Int(task.unit.dropFirst("blocks.".count))! : nil
        guard (0...vit.blocks.count + 2).contains(task.index), block.map({ task.index == $0 || task.index == $0 + 1 }) ?? true else {
            return "reconstruction unit '\(task.unit)' at index \(task.index), which is not its place in forward order"
        }
        if let d = task.decisions.first(where: { !ReconstructionTask.belongs($0.op, to: task.unit) }) {
            return "reconstruction unit '\(task.unit)' carries a decision of op \(d.op), which is not one of its ops"
        }
        guard Set(task.decisions.map(\.op)).count == task.decisions.count else { return "reconstruction unit '\(task.unit)' carries an op twice" }
        return nil
    }

    /// One unit's reconstruction. In sequential mode `stream` holds the quantized residual
    /// stream entering the unit (nil before the first unit that makes one) and leaves holding
    /// the one after it.
    static func reconstruct(_ unit: String, index: Int, model: any SearchableModel, decisions: [String: OpDecision],
                            stores: [CalibrationStore], settings: ReconstructionSettings,
                            stream: QuantizedStream?) throws -> ReconstructionOutcome {
        guard let vit = model as? VisionTransformer else { throw unsupported(model) }
        let images = stores.reduce(0) { $0 + $1.images.count }
        let capacity = min(settings.batchImages, images)
        let trainer = try makeTrainer(unit, vit: vit, decisions: decisions, settings: settings, capacity: capacity)
        var data: ReconstructionData
        if unit.hasPrefix("blocks.") {
            let i = Int(unit.dropFirst("blocks.".count))!
            data = try gather(stores, input: CalibrationCollector.storeName(vit.residualTap(block: i)),
                              target: CalibrationCollector.storeName(vit.residualTap(block: i + 1)),
                              gradient: "\(unit).mlp.fc2.grad", fisherWeight: settings.fisherWeight)
        } else {
            data = try gather(stores, input: "\(unit).input", target: "\(unit).output", gradient: "\(unit).grad", fisherWeight: settings.fisherWeight)
        }
        if let stream {
            if let quantized = stream.tensor, unit.hasPrefix("blocks.") {
                data = ReconstructionData(images: data.images, inputs: quantized, targets: data.targets, weights: data.weights)
            } else if let quantized = stream.tensor {
                data = ReconstructionData(images: data.images, inputs: headInputs(vit, stream: quantized, unit: unit, images: data.images),
                                          targets: data.targets, weights: data.weights)
            }
        }
        var stats = Reconstructor.train(trainer, name: unit, data: data, settings: settings, unitIndex: index)
        if let stream {
            // The next unit's input: this unit's quantized output, with the searched quantizers when the learned ones are not kept.
            let run = stats.kept ? trainer : try makeTrainer(unit, vit: vit, decisions: decisions, settings: settings, capacity: capacity)
            if !stats.kept { for l in run.linears { l.setWeight(hard: true) } }
            if unit == "patch_embed.proj" {
                stream.tensor = embedTokens(vit, patches: Reconstructor.outputs(run, data: data, batch: capacity), images: data.images)
            } else if unit.hasPrefix("blocks.") {
                stream.tensor = Reconstructor.outputs(run, data: data, batch: capacity)
            }
            stats.sequential = true
        }
        var outcome = ReconstructionOutcome(units: [stats])
        guard stats.kept else { return outcome }
        for l in trainer.linears {
            guard let ints = l.integers, let input = l.input else { continue }
            outcome.integers[l.name] = ints
            outcome.inputs[l.name] = input.current
        }
        if let block = trainer as? ViTBlockReconstruction, let q = block.q, let k = block.k, let v = block.v {
            outcome.attention["\(unit).attn"] = LearnedAttention(q: q.current, k: k.current, v: v.current)
        }
        return outcome
    }

    /// The trainer of `unit`, starting from the search's quantizers.
    static func makeTrainer(_ unit: String, vit: VisionTransformer, decisions: [String: OpDecision], settings: ReconstructionSettings,
                            capacity: Int) throws -> ReconstructionUnit {
        if unit.hasPrefix("blocks."), let i = Int(unit.dropFirst("blocks.".count)), vit.blocks.indices.contains(i) {
            return ViTBlockReconstruction(block: vit.blocks[i], index: i, config: vit.config, decisions: decisions, settings: settings, images: capacity)
        }
        guard let op = vit.linearOps.first(where: { $0.name == unit })?.op as? Linear, let decision = decisions[unit] else {
            throw RecipeError("reconstruction", "no unit '\(unit)' in this model")
        }
        let rows = unit == "patch_embed.proj" ? vit.config.numPatches : 1
        return LinearReconstruction(name: unit, float: op, decision: decision, settings: settings, rowsPerImage: rows, images: capacity)
    }

    /// The token sequence [N·T, E] of the patch embeddings [N·P, E]: class (and distillation)
    /// token, the patches, plus the position embedding, as the model's forward makes it.
    static func embedTokens(_ vit: VisionTransformer, patches: Tensor, images n: Int) -> Tensor {
        let c = vit.config, t = c.tokens, e = c.embedDim, np = c.numPatches
        let x = Tensor(zeros: [n * t * e])
        for i in 0..<n {
            let xi = x.data + i * t * e
            xi.update(from: vit.clsToken.data, count: e)
            if let d = vit.distToken { (xi + e).update(from: d.data, count: e) }
            (xi + c.prefixTokens * e).update(from: patches.data + i * np * e, count: np * e)
            Ops.add(xi, vit.posEmbed.data, count: t * e)
        }
        return x
    }

    /// A head's input [N, E] from the residual stream after the last block: the final norm's
    /// row 0 (`head`) or 1 (`head_dist`).
    static func headInputs(_ vit: VisionTransformer, stream: Tensor, unit: String, images n: Int) -> Tensor {
        let t = vit.config.tokens, e = vit.config.embedDim, row = unit == "head_dist" ? 1 : 0
        let normed = Tensor(zeros: [n * t * e]), out = Tensor(zeros: [n * e])
        vit.norm.forward(stream.data, rows: n * t, into: normed.data)
        for i in 0..<n { (out.data + i * e).update(from: normed.data + (i * t + row) * e, count: e) }
        return out
    }

    /// The images of every shard, concatenated: the unit's input, its float output and the
    /// output weights 1 + κ g²/mean(g²) from stage 1's gradient g of the output.
    static func gather(_ stores: [CalibrationStore], input: String, target: String, gradient: String, fisherWeight: Float) throws -> ReconstructionData {
        for name in [input, target, gradient] where stores.isEmpty || !stores.allSatisfy({ $0.has(name) }) {
            throw RecipeError("reconstruction", "stage 1 did not collect '\(name)' (is the unit's op quantized?)")
        }
        func concat(_ name: String) -> Tensor {
            let parts = stores.map { $0[name] }
            let per = parts[0].perImage, total = parts.reduce(0) { $0 + $1.images }
            let t = Tensor(zeros: [total * per])
            var at = 0
            for p in parts {
                precondition(p.perImage == per, "\(name): shards disagree on its shape")
                (t.data + at * per).update(from: p.image(0), count: p.images * per)
                at += p.images
                p.releasePages()
            }
            return t
        }
        let x = concat(input), y = concat(target), g = concat(gradient)
        precondition(g.count == y.count, "\(gradient) and \(target) differ in size")
        var meanSquare = 0.0
        for i in 0..<g.count { meanSquare += Double(g.data[i]) * Double(g.data[i]) }
        meanSquare /= Double(max(1, g.count))
        let kappa = meanSquare > 0 ? Double(fisherWeight) / meanSquare : 0
        for i in 0..<g.count { let gi = Double(g.data[i]); g.data[i] = Float(1 + kappa * gi * gi) }
        return ReconstructionData(images: stores.reduce(0) { $0 + $1.images.count }, inputs: x, targets: y, weights: g)
    }

    /// The float model whose reconstructed ops hold their learned integers times their steps
    /// (so quantizing them again gives exactly those integers), and the decisions with the
    /// learned input and attention quantizers.
    public static func apply(_ outcome: ReconstructionOutcome, model: any SearchableModel,
                             decisions: [String: OpDecision]) -> (model: any SearchableModel, decisions: [String: OpDecision]) {
        var decisions = decisions
        for (name, input) in outcome.inputs { decisions[name]?.quantizers[1] = input }
        for (block, a) in outcome.attention {
            decisions["\(block).matmul1"]?.quantizers = [a.q, a.k]
            decisions["\(block).matmul2"]?.quantizers[1] = a.v
        }
        let snapped = model.replacing(linear: { name, op in
            guard let ints = outcome.integers[name], let d = decisions[name] else { return op }
            let lin = op as! Linear, quant = d.quantizers[0].uniform
            let w = Tensor(zeros: [lin.outFeatures, lin.inFeatures])
            for o in 0..<lin.outFeatures {
                let s = quant.rowScale(o), z = quant.zeroPoints[quant.zeroPoints.count == 1 ? 0 : o]
                for i in 0..<lin.inFeatures { w.data[o * lin.inFeatures + i] = Float(Int32(ints[o * lin.inFeatures + i]) - z) * s }
            }
            return Linear(weight: w, bias: lin.bias)
        }, attention: { $1 })
        return (snapped, decisions)
    }
}
