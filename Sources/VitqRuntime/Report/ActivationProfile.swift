import VitqModels
import VitqTensor

/// The range of each linear op's input on a set of images, with a histogram of its magnitudes:
/// what `vitq report` draws beside the clipping the calibration chose. Two passes through the
/// float model: the maxima, then the counts in `bins` equal bins over [0, max].
public struct ActivationProfile: Sendable {
    /// One op's input: the largest magnitude and the histogram of magnitudes below it.
    public struct Entry: Sendable, Equatable {
        public var maxAbs: Double
        public var counts: [Int]
    }
    public var entries: [String: Entry]
    /// The images it was measured on.
    public var images: Range<Int>

    /// Profiles the inputs of `ops` over `images` (loaded by `load`, `batch` at a time).
    public static func measure(_ model: any ImageClassifier, ops: [String], images: Range<Int>, batch: Int, bins: Int = 48,
                               load: (Range<Int>) throws -> Tensor) throws -> ActivationProfile {
        let observer = MagnitudeObserver(names: Set(ops.map { $0 + ".input" }), bins: bins)
        for pass in 0..<2 {
            observer.counting = pass == 1
            var lo = images.lowerBound
            while lo < images.upperBound {
                let hi = min(lo + batch, images.upperBound)
                _ = model.forward(try load(lo..<hi), observer: observer)
                lo = hi
            }
        }
        var entries: [String: Entry] = [:]
        for (name, m) in observer.maxAbs {
            entries[String(name.dropLast(".input".count))] = Entry(maxAbs: Double(m), counts: observer.counts[name] ?? [])
        }
        return ActivationProfile(entries: entries, images: images)
    }
}

/// Per tapped name: the running max |x| (first pass), then the magnitude counts (second pass).
private final class MagnitudeObserver: ForwardObserver {
    let names: Set<String>, bins: Int
    var counting = false
    var maxAbs: [String: Float] = [:]
    var counts: [String: [Int]] = [:]
    init(names: Set<String>, bins: Int) { self.names = names; self.bins = bins }
    func wants(_ name: String) -> Bool { names.contains(name) }
    func observe(_ name: String, _ values: UnsafeBufferPointer<Float>, shape: [Int]) {
        if !counting {
            maxAbs[name] = values.reduce(maxAbs[name] ?? 0) { abs($1).isFinite ? max($0, abs($1)) : $0 }   // a non-finite value is not drawn
            return
        }
        let top = maxAbs[name] ?? 0
        var c = counts[name] ?? [Int](repeating: 0, count: bins)
        if top > 0 {
            let perBin = Float(bins) / top
            for v in values where abs(v).isFinite { c[min(Int(abs(v) * perBin), bins - 1)] += 1 }
        } else {
            c[0] += values.count
        }
        counts[name] = c
    }
}
