/// Block reconstruction's settings (recipe keys `reconstruction` and `reconstruction_*`,
/// `rounding_*`, `fisher_weight`, `qdrop`; Docs/ALGORITHMS.md §7): after the scale search, each
/// transformer block (and the patch embedding and the heads on their own) learns its weights'
/// rounding (AdaRound) and its inputs' steps (LSQ) so that its quantized output matches the
/// float one, weighted by the task loss's Fisher.
public struct ReconstructionSettings: Equatable, Sendable {
    /// Where a block's inputs come from.
    public enum Mode: String, Sendable, CaseIterable {
        /// The float model's inputs from stage 1: every block is independent (one unit each).
        case parallel
        /// The quantized model's own inputs: each block, reconstructed, feeds the next (BRECQ's
        /// order), so a block can make up for the error of those before it; one unit after another.
        case sequential
    }
    public var mode: Mode = .parallel
    /// Adam steps per block.
    public var iterations = 2000
    /// Calibration images per step.
    public var batchImages = 4
    /// Adam's learning rate for the rounding logits.
    public var roundingRate: Float = 1e-3
    /// Adam's learning rate for the logarithm of each learned step (0: steps stay as searched).
    public var stepRate: Float = 1e-3
    /// λ of AdaRound's regulariser λ Σ (1 − |2h − 1|^β).
    public var roundingWeight: Float = 0.01
    /// The fraction of the iterations before the regulariser starts (β then falls from 20 to 2).
    public var warmup: Float = 0.2
    /// κ of the output weights w = 1 + κ · g² / mean(g²), g the stage-1 gradient of the block's output.
    public var fisherWeight: Float = 1
    /// QDrop: the probability that an element of a linear op's input stays float in a step.
    public var dropProbability: Float = 0
    /// Seeds the batches and QDrop (with the block's index), so a run is the same bits anywhere.
    public var seed = 0

    /// AdaRound's β at the start and the end of the annealing.
    public static let betaRange: (start: Float, end: Float) = (20, 2)

    public init() {}

    /// β of the regulariser at iteration `t` (nil during warmup: no regulariser).
    public func beta(at t: Int) -> Float? {
        let start = Int((warmup * Float(iterations)).rounded(.down))
        guard t >= start else { return nil }
        let rel = Float(t - start) / Float(max(1, iterations - start))
        let (b0, b1) = Self.betaRange
        return b1 + (b0 - b1) * max(0, 1 - rel)
    }

    /// The settings as canonical-JSON fields of a recipe.
    var jsonFields: [String: Any] {
        ["reconstruction": mode.rawValue, "reconstruction_iterations": iterations, "reconstruction_batch": batchImages,
         "reconstruction_lr": Double(roundingRate), "reconstruction_step_lr": Double(stepRate),
         "rounding_weight": Double(roundingWeight), "rounding_warmup": Double(warmup),
         "fisher_weight": Double(fisherWeight), "qdrop": Double(dropProbability), "reconstruction_seed": seed]
    }
}
