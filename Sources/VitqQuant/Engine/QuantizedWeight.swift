import VitqTensor

/// An int8 weight [out, in] with per-channel or per-tensor scales, and the float bias.
public struct QuantizedWeight: @unchecked Sendable {
    public let values: [Int8]
    public let outFeatures: Int
    public let inFeatures: Int
    public let quant: TensorQuant
    public let bias: Tensor?

    public init(values: [Int8], outFeatures: Int, inFeatures: Int, quant: TensorQuant, bias: Tensor?) {
        precondition(values.count == outFeatures * inFeatures)
        precondition(quant.scales.count == (quant.granularity == .perChannel ? outFeatures : 1))
        self.values = values; self.outFeatures = outFeatures; self.inFeatures = inFeatures; self.quant = quant; self.bias = bias
    }

    /// Quantizes a float weight [out, in]: row o uses scale o (per-channel) or scale 0.
    public init(weight: Tensor, bias: Tensor?, quant: TensorQuant) {
        let out = weight.shape[0], inF = weight.shape[1]
        var q = [Int8](repeating: 0, count: out * inF)
        q.withUnsafeMutableBufferPointer { qp in
            for o in 0..<out {
                quant.quantize(weight.data + o * inF, count: inF, index: quant.granularity == .perChannel ? o : 0,
                               into: qp.baseAddress! + o * inF)
            }
        }
        self.init(values: q, outFeatures: out, inFeatures: inF, quant: quant, bias: bias)
    }

    /// Scale of output channel `o`.
    @inline(__always) public func scale(_ o: Int) -> Float { quant.rowScale(o) }

    /// The dequantized weight [out, in]: (q − zero)·Δ.
    public func dequantized() -> Tensor {
        let t = Tensor(zeros: [outFeatures, inFeatures])
        for o in 0..<outFeatures {
            let idx = quant.granularity == .perChannel ? o : 0
            let z = quant.zeroPoints[idx], s = quant.scales[idx]
            for i in 0..<inFeatures { t.data[o * inFeatures + i] = Float(Int32(values[o * inFeatures + i]) - z) * s }
        }
        return t
    }
}
