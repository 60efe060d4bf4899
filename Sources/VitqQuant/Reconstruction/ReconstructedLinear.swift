import Foundation
import VitqModels
import VitqTensor

/// One linear op inside a reconstruction: its weight with learned rounding (or float, when the
/// search left it float), its bias, its input quantizer, and the gradients of one step.
final class ReconstructedLinear: @unchecked Sendable {
    let name: String
    let outFeatures: Int, inFeatures: Int
    let rounding: SoftRounding?
    let input: LearnedQuantizer?
    let bias: [Float]?
    /// The weight the current step uses [out, in]: soft-rounded, hard-rounded or float.
    var weight: [Float]
    var weightGradient: [Float]
    var logitGradient: [Float]
    var adam: AdamOptimizer?

    /// `decision` nil: a float op (nothing learned, nothing quantized); `quantizesInput` false
    /// leaves the input float (the gradient checks).
    init(name: String, float: Linear, decision: OpDecision?, settings: ReconstructionSettings, quantizesInput: Bool = true) {
        self.name = name
        outFeatures = float.outFeatures; inFeatures = float.inFeatures
        weight = Array(UnsafeBufferPointer(start: float.weight.data, count: float.weight.count))
        weightGradient = [Float](repeating: 0, count: weight.count)
        if let decision {
            rounding = SoftRounding(weight: float.weight.data, rows: outFeatures, cols: inFeatures, quant: decision.quantizers[0].uniform)
            input = quantizesInput ? LearnedQuantizer(decision.quantizers[1], stepRate: settings.stepRate) : nil
            bias = decision.bias ?? float.bias.map { Array(UnsafeBufferPointer(start: $0.data, count: $0.count)) }
            logitGradient = [Float](repeating: 0, count: weight.count)
            adam = AdamOptimizer(count: weight.count, rate: settings.roundingRate)
        } else {
            rounding = nil; input = nil; logitGradient = []
            bias = float.bias.map { Array(UnsafeBufferPointer(start: $0.data, count: $0.count)) }
        }
    }

    /// Sets ``weight`` from the rounding, soft or hard (a float op keeps its weight).
    func setWeight(hard: Bool) {
        guard let rounding else { return }
        weight.withUnsafeMutableBufferPointer { rounding.weight(hard: hard, into: $0.baseAddress!) }
    }

    /// y [rows, out] = a [rows, in] · Wᵀ + b.
    func forward(_ a: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        weight.withUnsafeBufferPointer { w in
            if let bias {
                bias.withUnsafeBufferPointer { Gemm.linear(a, rows: rows, weight: w.baseAddress!, outFeatures: outFeatures, inFeatures: inFeatures, bias: $0.baseAddress!, into: y) }
            } else {
                Gemm.linear(a, rows: rows, weight: w.baseAddress!, outFeatures: outFeatures, inFeatures: inFeatures, bias: nil, into: y)
            }
        }
    }

    /// dL/dW = dyᵀ · a into ``weightGradient`` (blocks of output channels fixed by the shape, so
    /// the sums are the same bits on any thread count), and dL/da = dy · W into `da`.
    func backward(_ dy: UnsafePointer<Float>, a: UnsafePointer<Float>, rows: Int, into da: UnsafeMutablePointer<Float>?) {
        let o = outFeatures, k = inFeatures
        if rounding != nil {
            weightGradient.withUnsafeMutableBufferPointer { dw in
                let base = dw.baseAddress!
                Parallel.forBlocks(o, block: 32) { r in
                    Gemm.sgemmTransA(m: r.count, n: k, k: rows, a: dy + r.lowerBound, lda: o, b: a, ldb: k, c: base + r.lowerBound * k, ldc: k)
                }
            }
        }
        guard let da else { return }
        weight.withUnsafeBufferPointer { w in
            Gemm.splitRows(rows) { r in
                Gemm.sgemm(m: r.count, n: k, k: o, a: dy + r.lowerBound * o, lda: o, b: w.baseAddress!, ldb: k, transB: false,
                           c: da + r.lowerBound * k, ldc: k)
            }
        }
    }

    /// The rounding's Adam step from ``weightGradient`` and the regulariser at `beta`; returns
    /// the regulariser's value.
    func stepRounding(lambda: Float, beta: Float?) -> Double {
        guard let rounding else { return 0 }
        let reg = weightGradient.withUnsafeBufferPointer { dw in
            logitGradient.withUnsafeMutableBufferPointer { rounding.logitGradient(dw.baseAddress!, lambda: lambda, beta: beta, into: $0.baseAddress!) }
        }
        rounding.logits.withUnsafeMutableBufferPointer { p in
            logitGradient.withUnsafeBufferPointer { adam!.step(p.baseAddress!, gradient: $0.baseAddress!) }
        }
        return reg
    }

    /// The hard-rounded integers [out, in] (nil for a float op).
    var integers: [Int8]? {
        guard let rounding else { return nil }
        return (0..<weight.count).map { Int8(rounding.integer($0, hard: true)) }
    }
}
