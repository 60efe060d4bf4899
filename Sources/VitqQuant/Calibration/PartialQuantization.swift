import Foundation
import VitqModels
import VitqTensor

/// Partial quantization (Wu et al. §1): rank the linear ops by how much quantizing each one
/// alone disturbs its output, so the worst can stay in float.
///
/// The sensitivity of op i is its mean per-token relative output error on the calibration
/// images, mean over tokens of ‖x̂·Ŵᵀ − x·Wᵀ‖² / ‖x·Wᵀ‖², with x the op's float input, x̂ its
/// quantized input and Ŵ the quantized weight, computed by the integer engine. Per token, because a few outlier tokens
/// would otherwise dominate the norm and hide that every other token is rounded away. One float
/// forward pass gives every op's input, so the ranking costs about two passes, not one per op.
public enum PartialQuantization {
    /// Ops sorted by decreasing sensitivity (ties by name), with their relative errors.
    public static func rank(model: any SearchableModel, weights: [String: TensorQuant], inputs: [String: OperandQuant],
                            batches: [Tensor]) -> [(name: String, error: Double)] {
        let observer = ErrorObserver(model: model, weights: weights, inputs: inputs)
        for b in batches { _ = model.forward(b, observer: observer) }
        return observer.sums.map { ($0.key, $0.value.den > 0 ? $0.value.num / $0.value.den : 0) }
            .sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
    }

    final class ErrorObserver: ForwardObserver {
        let ops: [String: (float: Linear, quantized: Int8Linear)]
        var sums: [String: (num: Double, den: Double)] = [:]

        init(model: any SearchableModel, weights: [String: TensorQuant], inputs: [String: OperandQuant]) {
            var ops: [String: (Linear, Int8Linear)] = [:]
            for (name, op) in model.linearOps {
                guard let wq = weights[name], let iq = inputs[name], let lin = op as? Linear else { continue }
                ops[name] = (lin, Int8Linear(weight: QuantizedWeight(weight: lin.weight, bias: lin.bias, quant: wq), input: iq))
            }
            self.ops = ops
        }

        func wants(_ name: String) -> Bool { name.hasSuffix(".input") && ops[String(name.dropLast(6))] != nil }

        func observe(_ name: String, _ values: UnsafeBufferPointer<Float>, shape: [Int]) {
            let key = String(name.dropLast(6))
            guard let (lin, fq) = ops[key] else { return }
            let rows = values.count / lin.inFeatures, n = rows * lin.outFeatures
            let y = Tensor(zeros: [n]), yq = Tensor(zeros: [n])
            lin.forward(values.baseAddress!, rows: rows, into: y.data)
            fq.forward(values.baseAddress!, rows: rows, into: yq.data)
            var total = 0.0
            let o = lin.outFeatures
            for r in 0..<rows {
                var num = 0.0, den = 0.0
                for i in (r * o)..<((r + 1) * o) {
                    let d = Double(yq.data[i] - y.data[i])
                    num += d * d
                    den += Double(y.data[i]) * Double(y.data[i])
                }
                total += den > 0 ? num / den : 0
            }
            let old = sums[key] ?? (0, 0)
            sums[key] = (old.num + total, old.den + Double(rows))
        }
    }
}
