import VitqModels
import VitqTensor

/// One linear op reconstructed on its own (the patch embedding, the heads): y = Q(x) · Ŵᵀ + b
/// against its float output.
final class LinearReconstruction: ReconstructionUnit, @unchecked Sendable {
    let linear: ReconstructedLinear
    let capacity: Int, rowsPerImage: Int
    let input: Tensor, quantized: Tensor, output: Tensor, outputGradient: Tensor, inputGradient: Tensor

    init(name: String, float: Linear, decision: OpDecision, settings: ReconstructionSettings, rowsPerImage: Int, images: Int) {
        linear = ReconstructedLinear(name: name, float: float, decision: decision, settings: settings)
        capacity = images; self.rowsPerImage = rowsPerImage
        let rows = images * rowsPerImage
        input = Tensor(zeros: [rows * float.inFeatures]); quantized = Tensor(zeros: [rows * float.inFeatures])
        inputGradient = Tensor(zeros: [rows * float.inFeatures])
        output = Tensor(zeros: [rows * float.outFeatures]); outputGradient = Tensor(zeros: [rows * float.outFeatures])
    }

    var inputWidth: Int { linear.inFeatures }
    var outputWidth: Int { linear.outFeatures }
    var linears: [ReconstructedLinear] { [linear] }
    var quantizers: [LearnedQuantizer] { [linear.input].compactMap { $0 }.filter(\.learns) }

    func drawDropMasks(probability: Float, rows: Int, random: inout SeededRandom) -> [String: [UInt8]] {
        guard probability > 0 else { return [:] }
        return ["input": (0..<(rows * inputWidth)).map { _ in random.uniform() < Double(probability) ? 1 : 0 }]
    }

    func forward(images b: Int, masks: [String: [UInt8]]) {
        let rows = b * rowsPerImage, quant = linear.input!
        if let keep = masks["input"] {
            keep.withUnsafeBufferPointer { quant.forward(input.data, rows: rows, cols: inputWidth, ld: inputWidth, group: 0, into: quantized.data, keep: $0.baseAddress!) }
        } else {
            quant.forward(input.data, rows: rows, cols: inputWidth, ld: inputWidth, group: 0, into: quantized.data)
        }
        linear.forward(quantized.data, rows: rows, into: output.data)
    }

    func backward(images b: Int, masks: [String: [UInt8]]) -> [ObjectIdentifier: [Double]] {
        let rows = b * rowsPerImage, quant = linear.input!
        linear.backward(outputGradient.data, a: quantized.data, rows: rows, into: quant.learns ? inputGradient.data : nil)
        guard quant.learns else { return [:] }
        let g: Double
        if let keep = masks["input"] {
            g = keep.withUnsafeBufferPointer { quant.backward(inputGradient.data, x: input.data, rows: rows, cols: inputWidth, ld: inputWidth, group: 0, keep: $0.baseAddress!) }
        } else {
            g = quant.backward(inputGradient.data, x: input.data, rows: rows, cols: inputWidth, ld: inputWidth, group: 0)
        }
        return [ObjectIdentifier(quant): [g]]
    }
}
