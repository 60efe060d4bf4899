import Foundation
import VitqData
import VitqModels
import VitqTensor

/// Accuracy and speed of one evaluation run.
public struct EvalResult: Sendable {
    public var images: Int
    public var top1Correct: Int
    public var top5Correct: Int
    public var labelled: Bool
    public var seconds: Double
    /// Logits [images, classes], row-major.
    public var logits: [Float]
    public var classes: Int

    public var top1: Double { images == 0 ? 0 : Double(top1Correct) / Double(images) }
    public var top5: Double { images == 0 ? 0 : Double(top5Correct) / Double(images) }
    public var imagesPerSecond: Double { seconds > 0 ? Double(images) / seconds : 0 }

}

/// Runs a model over a dataset in batches and scores top-1 / top-5.
public enum Evaluator {
    /// Evaluates `model` on images `range` of `dataset`.
    public static func run(model: any ImageClassifier, dataset: ImageDataset, range: Range<Int>, batch: Int,
                           progress: ProgressBar? = nil) throws -> EvalResult {
        let size = model.imageSize, classes = model.numClasses
        var result = EvalResult(images: range.count, top1Correct: 0, top5Correct: 0, labelled: dataset.labels != nil,
                                seconds: 0, logits: [], classes: classes)
        result.logits.reserveCapacity(range.count * classes)
        let start = DispatchTime.now()
        var lo = range.lowerBound
        while lo < range.upperBound {
            let hi = min(lo + batch, range.upperBound)
            let input = try dataset.batch(Array(lo..<hi), size: size)
            let logits = model.forward(input, observer: nil)
            for i in 0..<(hi - lo) {
                let row = UnsafeBufferPointer(start: logits.data + i * classes, count: classes)
                result.logits.append(contentsOf: row)
                if let labels = dataset.labels, let rank = rank(of: labels[lo + i], in: row) {
                    if rank == 0 { result.top1Correct += 1 }
                    if rank < 5 { result.top5Correct += 1 }
                }
            }
            progress?.advance(hi - lo)
            lo = hi
        }
        result.seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        progress?.finish()
        return result
    }

    /// The rank of class `label` in the logits `row`: the number of classes scoring strictly
    /// higher, ties favouring the lower index. Nil — never correct — when the label is not a class
    /// of the row (a 0-class head has none) or any logit is NaN (the ranking is undefined).
    public static func rank(of label: Int, in row: UnsafeBufferPointer<Float>) -> Int? {
        guard label >= 0, label < row.count, !row.contains(where: { $0.isNaN }) else { return nil }
        let target = row[label]
        var higher = 0
        for j in 0..<row.count where row[j] > target || (row[j] == target && j < label) { higher += 1 }
        return higher
    }
}
