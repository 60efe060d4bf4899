import VitqModels
import VitqTensor

/// The gradient checks' view of one reconstruction unit (`@_spi(Testing) import VitqQuant`):
/// its loss with soft rounding (and λ times the regulariser at β), its hand-written gradients,
/// and its rounding logits and log steps to perturb.
@_spi(Testing) public final class ReconstructionProbe {
    let unit: ReconstructionUnit
    let data: ReconstructionData
    let lambda: Float, beta: Float?

    /// Block `block` of `model` with `decisions`; `quantizesInputs` false leaves the linear
    /// inputs float. `input`, `target` and `weights` hold `images` images.
    public init(model: VisionTransformer, block: Int, decisions: [String: OpDecision], quantizesInputs: Bool,
                input: Tensor, target: Tensor, weights: Tensor, images: Int, lambda: Float = 0, beta: Float? = nil) {
        var settings = ReconstructionSettings()
        settings.stepRate = 1
        unit = ViTBlockReconstruction(block: model.blocks[block], index: block, config: model.config, decisions: decisions,
                                      settings: settings, images: images, quantizesInputs: quantizesInputs)
        data = ReconstructionData(images: images, inputs: input, targets: target, weights: weights)
        self.lambda = lambda; self.beta = beta
    }

    /// Linear op `name` reconstructed alone.
    public init(linear name: String, float: Linear, decision: OpDecision, rowsPerImage: Int,
                input: Tensor, target: Tensor, weights: Tensor, images: Int) {
        var settings = ReconstructionSettings()
        settings.stepRate = 1
        unit = LinearReconstruction(name: name, float: float, decision: decision, settings: settings, rowsPerImage: rowsPerImage, images: images)
        data = ReconstructionData(images: images, inputs: input, targets: target, weights: weights)
        lambda = 0; beta = nil
    }

    /// The rounding logits by linear op.
    public var logits: [String: [Float]] {
        get { Dictionary(uniqueKeysWithValues: unit.linears.compactMap { l in l.rounding.map { (l.name, $0.logits) } }) }
        set { for l in unit.linears { if let v = newValue[l.name] { l.rounding!.logits = v } } }
    }

    /// The learned quantizers' log steps, in the unit's order.
    public var logSteps: [[Double]] {
        get { unit.quantizers.map(\.logSteps) }
        set { for (q, v) in zip(unit.quantizers, newValue) { q.restore(v) } }
    }

    /// The loss: the weighted output error plus λ Σ (1 − |2h − 1|^β).
    public func loss() -> Double {
        for l in unit.linears { l.setWeight(hard: false) }
        Reconstructor.load(Array(0..<data.images), data: data, into: unit, targets: targets, weights: weights)
        unit.forward(images: data.images, masks: [:])
        var total = Reconstructor.loss(unit, images: data.images, targets: targets.data, weights: weights.data, gradient: false)
        if let beta {
            for l in unit.linears { if let r = l.rounding { total += Double(lambda) * r.regulariser(beta: beta) } }
        }
        return total
    }

    /// The hand-written gradients of ``loss()``: by linear op for the logits, in the unit's
    /// order for the log steps.
    public func gradients() -> (logits: [String: [Float]], logSteps: [[Double]]) {
        for l in unit.linears { l.setWeight(hard: false) }
        Reconstructor.load(Array(0..<data.images), data: data, into: unit, targets: targets, weights: weights)
        unit.forward(images: data.images, masks: [:])
        _ = Reconstructor.loss(unit, images: data.images, targets: targets.data, weights: weights.data, gradient: true)
        let steps = unit.backward(images: data.images, masks: [:])
        var logits: [String: [Float]] = [:]
        for l in unit.linears {
            guard let r = l.rounding else { continue }
            var g = [Float](repeating: 0, count: r.logits.count)
            l.weightGradient.withUnsafeBufferPointer { dw in g.withUnsafeMutableBufferPointer { _ = r.logitGradient(dw.baseAddress!, lambda: lambda, beta: beta, into: $0.baseAddress!) } }
            logits[l.name] = g
        }
        return (logits, unit.quantizers.map { steps[ObjectIdentifier($0)] ?? [Double](repeating: 0, count: $0.searched.count) })
    }

    private lazy var targets = Tensor(zeros: [data.targets.count])
    private lazy var weights = Tensor(zeros: [data.weights.count])
}
