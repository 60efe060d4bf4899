import VitqTensor

/// Entry points for gradient checks in the tests (`@_spi(Testing) import VitqModels`).
extension VisionTransformer {
    /// The logits of the float forward with `hook(name, values, shape)` free to change each op output
    /// in place; names are the gradient taps' without `.grad` (`blocks.1.mlp.act` is the GELU output).
    @_spi(Testing) public func logits(_ images: Tensor,
                                      perturbing hook: @escaping (String, UnsafeMutablePointer<Float>, [Int]) -> Void) -> Tensor {
        forward(images, context: ForwardContext(hook: hook)).logits
    }
}

extension SwinTransformer {
    /// The logits of the float forward with `hook(name, values, shape)` free to change each op
    /// output in place; names are the gradient taps' without `.grad`.
    @_spi(Testing) public func logits(_ images: Tensor,
                                      perturbing hook: @escaping (String, UnsafeMutablePointer<Float>, [Int]) -> Void) -> Tensor {
        forward(images, context: ForwardContext(hook: hook)).logits
    }
}

extension TaskLoss {
    /// The per-image target distributions t_i of the cross-entropy losses (dL/dz_i = softmax(z_i) − t_i).
    @_spi(Testing) public func targets(logits: Tensor, firstImageIndex: Int = 0) -> [[Double]] {
        TaskLossGradient.targets(self, logits: logits, firstImageIndex: firstImageIndex)
    }

    /// Σ_i Σ_j −t_ij · log softmax(z_i)_j in Double.
    @_spi(Testing) public static func crossEntropy(logits: Tensor, targets: [[Double]]) -> Double {
        TaskLossGradient.crossEntropy(logits: logits, targets: targets)
    }
}
