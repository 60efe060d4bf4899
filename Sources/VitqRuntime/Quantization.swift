import Foundation
import VitqData
import VitqFormats
import VitqModels
import VitqQuant
import VitqTensor

/// `vitq quantize` as a library call: calibrate a float model on a range of images with a
/// recipe and write the quantized file.
public enum Quantization {
    /// Calibrates `model` (loaded from `modelPath`) on images `calib` of `dataset` and writes the
    /// quantized file to `out`. Returns the quantized network.
    @discardableResult
    public static func run(model: VisionTransformer, modelPath: String, dataset: ImageDataset, calib: Range<Int>,
                           recipe: Recipe, batch: Int, out: String, progress: ProgressBar? = nil) throws -> QuantizedNetwork {
        let calibrator = MinMaxCalibrator(model: model, recipe: recipe)
        var lo = calib.lowerBound
        while lo < calib.upperBound {
            let hi = min(lo + batch, calib.upperBound)
            calibrator.observe(try dataset.batch(Array(lo..<hi), size: model.config.imgSize))
            progress?.advance(hi - lo)
            lo = hi
        }
        progress?.finish()
        let net = calibrator.finish()
        let provenance = QModelProvenance(sourceSHA256: try SHA256.hex(ofFile: modelPath),
                                          sourceName: (modelPath as NSString).lastPathComponent, recipeJSON: recipe.canonicalJSON)
        try QModelFile.write(net, provenance: provenance, to: out)
        return net
    }
}

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

    /// FP32 top-1 minus quantized top-1, in percentage points.
    public var dropPoints: Double { (fp32.top1 - quantized.top1) * 100 }

    static func argmax(_ l: [Float], _ i: Int, _ c: Int) -> Int {
        var best = 0
        for j in 1..<c where l[i * c + j] > l[i * c + best] { best = j }
        return best
    }
}
