import Foundation

/// The accuracy protocol's report: the quantized model against FP32 on the same images.
public struct AccuracyComparison: Sendable {
    public var fp32: EvalResult
    public var quantized: EvalResult

    public init(fp32: EvalResult, quantized: EvalResult) { self.fp32 = fp32; self.quantized = quantized }

    /// Fraction of images whose top-1 class equals FP32's.
    public var agreement: Double {
        let n = fp32.images, c = fp32.classes
        guard n > 0 else { return 0 }
        var same = 0
        for i in 0..<n where Self.argmax(fp32.logits, i, c) == Self.argmax(quantized.logits, i, c) { same += 1 }
        return Double(same) / Double(n)
    }

    /// The mean over images of the cosine similarity of quantized and FP32 logits.
    public var meanLogitCosine: Double {
        let n = fp32.images, c = fp32.classes
        guard n > 0 else { return 0 }
        var total = 0.0
        for i in 0..<n {
            var dot = 0.0, a2 = 0.0, b2 = 0.0
            for j in (i * c)..<((i + 1) * c) {
                let a = Double(fp32.logits[j]), b = Double(quantized.logits[j])
                dot += a * b; a2 += a * a; b2 += b * b
            }
            total += a2 > 0 && b2 > 0 ? dot / (a2.squareRoot() * b2.squareRoot()) : 0
        }
        return total / Double(n)
    }

    /// FP32 top-1 minus quantized top-1, in percentage points.
    public var dropPoints: Double { (fp32.top1 - quantized.top1) * 100 }

    static func argmax(_ l: [Float], _ i: Int, _ c: Int) -> Int {
        var best = 0
        for j in 1..<c where l[i * c + j] > l[i * c + best] { best = j }
        return best
    }
}
