import Foundation
import VitqModels
import VitqQuant
import VitqTensor

/// Block reconstruction as a stage of `vitq quantize` (in process, and after a distributed
/// search): the units of ``BlockReconstruction`` over stage 1's stores, with a progress bar.
enum ReconstructionStage {
    /// The model and decisions with the learned rounding and steps, how each unit went, and the seconds.
    static func run(model: any SearchableModel, recipe: Recipe, decisions: [String: OpDecision], stores: [CalibrationStore])
        throws -> (model: any SearchableModel, decisions: [String: OpDecision], units: [UnitReconstructionStats], seconds: Double) {
        guard let settings = recipe.reconstruction else { return (model, decisions, [], 0) }
        let started = Date()
        let bar = ProgressBar("reconstruct", total: try BlockReconstruction.units(model: model, decisions: decisions).count)
        let outcome = try BlockReconstruction.run(model: model, decisions: decisions, stores: stores, settings: settings) {
            bar.advance(1, detail: String(format: "%@ loss %.4g → %.4g%@", $0.unit, $0.lossBefore, $0.lossAfter, $0.kept ? "" : " (kept the search's)"))
        }
        bar.finish()
        let (final, finalDecisions) = BlockReconstruction.apply(outcome, model: model, decisions: decisions)
        return (final, finalDecisions, outcome.units, Date().timeIntervalSince(started))
    }

    /// A distributed search's reconstruction: stage 1 again on this process over the same fixed
    /// shards (the same bits as the workers' and as in process), then ``run(model:recipe:decisions:stores:)``.
    /// The block units run here, not on the workers.
    static func afterDistributedSearch(model: any SearchableModel, recipe: Recipe, decisions: [String: OpDecision], calib: Range<Int>,
                                       load: (Range<Int>) throws -> Tensor)
        throws -> (model: any SearchableModel, decisions: [String: OpDecision], units: [UnitReconstructionStats], seconds: Double) {
        guard recipe.reconstruction != nil else { return (model, decisions, [], 0) }
        let started = Date()
        let storage = StageOneStorage()
        let stores = try SearchCalibration.shards(calib, recipe: recipe).map { shard in
            try SearchCalibration.collect(model: model, recipe: recipe, shard: shard, budget: storage.budget,
                                          spillDirectory: storage.spillDirectory, load: load).store
        }
        var result = try run(model: model, recipe: recipe, decisions: decisions, stores: stores)
        result.seconds = Date().timeIntervalSince(started)
        return result
    }
}
