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
                if let labels = dataset.labels {
                    let label = labels[lo + i]
                    let target = label >= 0 && label < classes ? row[label] : -Float.infinity
                    // Rank = number of classes scoring strictly higher (ties favour the label's lower index).
                    var higher = 0
                    for j in 0..<classes where row[j] > target || (row[j] == target && j < label) { higher += 1 }
                    if higher == 0 { result.top1Correct += 1 }
                    if higher < 5 { result.top5Correct += 1 }
                }
            }
            progress?.advance(hi - lo)
            lo = hi
        }
        result.seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        progress?.finish()
        return result
    }
}
