/// The stage-2 settings a recipe gives (ALGORITHMS.md §2–3).
public struct SearchSettings: Equatable, Sendable {
    public var metric: SearchMetric = .hessian
    /// Candidates are Δ0·(α + i(β−α)/n), i = 0..<n.
    public var alpha: Float = 0.01
    public var beta: Float = 1.2
    public var candidates = 100
    /// Alternating rounds (weight then input; A then B).
    public var rounds = 3
    /// Liu et al.'s bias correction after the search.
    public var biasCorrection = true
    /// Weight granularity: per tensor (qkv still gets one scale each for q, k and v) or per channel.
    public var weightGranularity: Granularity = .perTensor
    public var weightScheme = QuantScheme(bits: 8, signed: true, narrow: true)
    public var activationScheme = QuantScheme(bits: 8, signed: true, narrow: false)
    /// Linear-op inputs: one searched scale per tensor, or dynamic per-token steps (not searched;
    /// twin quantization then applies to the softmax probabilities only).
    public var activationGranularity: Granularity = .perTensor
    /// Softmax probabilities when not twin-quantized.
    public var probsScheme = QuantScheme(bits: 8, signed: false, narrow: false)
    /// PTQ4ViT twin uniform quantization of softmax probabilities and GELU outputs.
    public var twin = false
    /// Twin softmax candidates: Δ1 = Δ2/2^shift for these shifts.
    public var twinSoftmaxShifts = 0...16
    /// Liu et al.'s ranking loss on attention scores: weight γ (0 = off) and hinge margin θ.
    public var rankingWeight: Float = 0
    public var rankingMargin: Float = 0

    public init() {}

    /// The candidate multipliers.
    public var multipliers: [Float] { CandidateSet.linear(alpha: alpha, beta: beta, count: candidates) }
}
