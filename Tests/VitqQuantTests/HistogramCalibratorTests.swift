import Foundation
import VitqQuant
import VitqTestSupport
import XCTest

/// The histogram calibrators (ActivationHistogram, HistogramThreshold): exact shard merging, the
/// symmetric, affine and weight thresholds against an independent numpy computation
/// (Tests/scripts/histogram_thresholds.py), hand-computed tiny histograms, degenerate inputs, timing.
final class HistogramCalibratorTests: XCTestCase {
    static let script = Fixtures.packageRoot + "/Tests/scripts/histogram_thresholds.py"

    /// SplitMix64: a seeded generator written here so the data is the same everywhere.
    struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        /// Uniform in (0, 1).
        mutating func uniform() -> Double { (Double(next() >> 11) + 0.5) / 9_007_199_254_740_992 }
        mutating func laplace(_ b: Double) -> Double {
            let u = uniform() - 0.5
            return -b * (u < 0 ? -1 : 1) * log(1 - 2 * abs(u))
        }
        mutating func gaussian() -> Double { sqrt(-2 * log(uniform())) * cos(2 * Double.pi * uniform()) }
    }

    /// 100k Laplace(1) values and five large outliers.
    static func longTailed(seed: UInt64 = 7) -> [Float] {
        var rng = Rng(state: seed)
        var v = (0..<100_000).map { _ in Float(rng.laplace(1)) }
        v += [40, -45, 52, -60, 75]
        return v
    }

    static func symmetricHistogram(_ v: [Float], bins: Int = 2048) -> ActivationHistogram {
        var h = ActivationHistogram(lower: 0, upper: v.map { abs($0) }.max()!, bins: bins)
        h.add(v, absolute: true)
        return h
    }

    func python(_ mode: String, _ values: [Float], _ args: [String] = []) throws -> [String: Any] {
        let dir = makeTempDir(); defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/values.f32"
        try values.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: URL(fileURLWithPath: path))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", Self.script, mode, path] + args
        let out = Pipe(); p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "python3 \(Self.script) \(mode)")
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    func counts(_ json: [String: Any]) -> [UInt64] { (json["counts"] as! [NSNumber]).map { $0.uint64Value } }
    func float(_ json: [String: Any], _ key: String) -> Float { Float((json[key] as! NSNumber).doubleValue) }
    func pair(_ json: [String: Any], _ key: String) -> (Float, Float) {
        let a = (json[key] as! [NSNumber]).map { Float($0.doubleValue) }
        return (a[0], a[1])
    }

    /// Asserts |a − b| <= one bin and prints whether the two agree exactly.
    func assertWithinBin(_ a: Float, _ b: Float, _ width: Float, _ what: String) {
        XCTAssertLessThanOrEqual(abs(a - b), width * 1.0001, "\(what): swift \(a), numpy \(b)")
        print("\(what): swift \(a) numpy \(b) \(a == b ? "exact" : "differ by \((a - b) / width) bins")")
    }

    // MARK: (1) shards

    func testMergeOfShardsEqualsHistogramOfConcatenation() throws {
        let v = Self.longTailed()
        let whole = Self.symmetricHistogram(v)
        var a = ActivationHistogram(lower: whole.lower, upper: whole.upper)
        var b = a
        a.add(Array(v[..<37_000]), absolute: true)
        b.add(Array(v[37_000...]), absolute: true)
        try a.merge(b)
        XCTAssertEqual(a, whole)
        XCTAssertEqual(a.total, UInt64(v.count))

        let encoded = try JSONEncoder().encode(a)
        XCTAssertEqual(try JSONDecoder().decode(ActivationHistogram.self, from: encoded), whole)

        var signed = ActivationHistogram(lower: -1, upper: 1)
        XCTAssertThrowsError(try signed.merge(whole)) { e in
            let text = "\(e)"
            XCTAssertTrue(text.contains("[-1.0, 1.0] in 2048 bins") && text.contains("[0.0, \(whole.upper)] in 2048 bins"), text)
        }
        var fewer = ActivationHistogram(lower: whole.lower, upper: whole.upper, bins: 1024)
        XCTAssertThrowsError(try fewer.merge(whole))
    }

    // MARK: (2) long-tailed symmetric against numpy

    func testLongTailedThresholdsMatchNumpy() throws {
        let v = Self.longTailed()
        let h = Self.symmetricHistogram(v)
        let width = h.upper / Float(h.bins)
        let ref = try python("symmetric", v, ["--bins", "2048", "--percentile", "99.99", "--quantized-bins", "128", "--levels", "127"])
        XCTAssertEqual(h.counts, counts(ref), "np.histogram counts")

        let p = HistogramThreshold.percentile(h, percentile: 99.99)
        let kl = HistogramThreshold.entropy(h, quantizedBins: 128)
        let mse = HistogramThreshold.mse(h, levels: 127)
        XCTAssertEqual(p, float(ref, "percentile"), "percentile is integer arithmetic: exact")
        assertWithinBin(kl, float(ref, "entropy"), width, "entropy")
        assertWithinBin(mse, float(ref, "mse"), width, "mse")
        print("long-tailed: max \(h.upper), percentile99.99 \(p), entropy \(kl), mse \(mse)")
        for (name, t) in [("percentile", p), ("entropy", kl)] {
            XCTAssertGreaterThan(t, 0, name)
            XCTAssertLessThan(t, h.upper / 3, "\(name) clips the outliers")
        }
        // The MSE clips only the farthest outliers: with 100k values the rounding error saved by a
        // finer grid (N·(Δt/127)²/12) is smaller than the squared distance of clipping the others.
        XCTAssertGreaterThan(mse, 12, "above the Laplace bulk")
        XCTAssertLessThan(mse, h.upper * 0.8, "mse clips the largest outliers")
    }

    // MARK: (3) hand-made histograms

    /// A histogram with the given counts over [0, bins]: bin k is [k, k+1), centre k + 0.5.
    func handMade(_ c: [Int]) -> ActivationHistogram {
        var h = ActivationHistogram(lower: 0, upper: Float(c.count), bins: c.count)
        for (k, n) in c.enumerated() { h.add([Float](repeating: Float(k) + 0.5, count: n), absolute: true) }
        XCTAssertEqual(h.counts, c.map(UInt64.init))
        return h
    }

    func testHandComputedThresholds() {
        // Counts [4, 3, 2, 0, 0, 0, 0, 1] over [0, 8], total 10; cumulative 4, 7, 9, 9, 9, 9, 9, 10.
        let h = handMade([4, 3, 2, 0, 0, 0, 0, 1])
        // 50%: 5 reached in bin 1 -> 2. 90%: 9 in bin 2 -> 3. 95%: 9.5 only in bin 7 -> 8.
        XCTAssertEqual(HistogramThreshold.percentile(h, percentile: 50), 2)
        XCTAssertEqual(HistogramThreshold.percentile(h, percentile: 90), 3)
        XCTAssertEqual(HistogramThreshold.percentile(h, percentile: 95), 8)
        // levels 1: grid {-t, 0, t}, candidates t = 2 ... 8; centres 0.5 (4), 1.5 (3), 2.5 (2), 7.5 (1).
        // t=2: 1 + 0.75 + 0.5 + 30.25 = 32.5     t=3: 1 + 6.75 (1.5/3 = 0.5 rounds to 0) + 0.5 + 20.25 = 28.5
        // t=4: 1 + 6.75 + 4.5 + 12.25 = 24.5     t=5: 1 + 6.75 + 12.5 (2.5/5 = 0.5 -> 0) + 6.25 = 26.5
        // t=6: 1 + 6.75 + 12.5 + 2.25 = 22.5     t=7: 1 + 6.75 + 12.5 + 0.25 = 20.5   t=8: same 20.5
        // -> 7, the first of the tie.
        XCTAssertEqual(HistogramThreshold.mse(h, levels: 1), 7)

        // Affine percentile on the same counts: 90% of 10 = 9 from the top is first reached at bin 0
        // (suffixes 10, 6, 3, ...) -> lo 0; from the bottom at bin 2 -> hi 3.
        let r = HistogramThreshold.percentileRange(h, percentile: 90)
        XCTAssertEqual(r.lo, 0); XCTAssertEqual(r.hi, 3)

        // KL with 2 levels on [6, 2, 1, 0] over [0, 4]:
        // i=2: P = [6, 3]/9, Q = [6, 2]/8: KL = 6/9 ln(8/9) + 3/9 ln(4/3) = 0.01737
        // i=3: P = [6, 2, 1]/9, groups {0,1},{2}: Q = [4, 4, 1]/9: KL = (6 ln 1.5 + 2 ln 0.5)/9 = 0.1163
        // i=4: groups {0,1},{2,3}: Q = [4, 4, 1, 0]/9: the same 0.1163   -> i = 2, t = 2.
        XCTAssertEqual(HistogramThreshold.entropy(handMade([6, 2, 1, 0]), quantizedBins: 2), 2)
        // [2, 1, 0, 1]: i=2: P = [2, 2]/4, Q = [2, 1]/3: KL = ln(1.125)/2 = 0.0589
        // i=3: P = [2, 1, 1]/4 but group {2} holds no in-range value: Q = [1.5, 1.5, 1e-4]/(3 + 1e-4):
        //      KL ≈ 0.25 ln(0.25·3/1e-4) − … ≈ 2.1
        // i=4: Q = [1.5, 1.5, 0, 1]/4: KL = 0.5 ln(4/3) + 0.25 ln(2/3) = 0.0425   -> i = 4, t = 4.
        XCTAssertEqual(HistogramThreshold.entropy(handMade([2, 1, 0, 1]), quantizedBins: 2), 4)
    }

    // MARK: (4) affine, one-sided

    func testOneSidedAffineRangesMatchNumpy() throws {
        var rng = Rng(state: 11)
        let v: [Float] = (0..<100_000).map { _ in
            let x = 1.4 * rng.gaussian()
            return Float(0.5 * x * (1 + erf(x / 2.0.squareRoot())))
        }
        var h = ActivationHistogram(lower: v.min()!, upper: v.max()!)
        h.add(v, absolute: false)
        let width = (h.upper - h.lower) / Float(h.bins)
        let ref = try python("affine", v, ["--bins", "2048", "--percentile", "99.99", "--quantized-bins", "256", "--steps", "255"])
        XCTAssertEqual(h.counts, counts(ref), "np.histogram counts")

        let p = HistogramThreshold.percentileRange(h, percentile: 99.99)
        let m = HistogramThreshold.mseRange(h, steps: 255)
        let e = HistogramThreshold.entropyRange(h, quantizedBins: 256)
        print("one-sided: [\(h.lower), \(h.upper)] percentile \(p) mse \(m) entropy \(e)")
        let (plo, phi) = pair(ref, "percentileRange")
        XCTAssertEqual(p.lo, plo); XCTAssertEqual(p.hi, phi)
        let (mlo, mhi) = pair(ref, "mseRange")
        assertWithinBin(m.lo, mlo, width, "mseRange.lo"); assertWithinBin(m.hi, mhi, width, "mseRange.hi")
        let (elo, ehi) = pair(ref, "entropyRange")
        assertWithinBin(e.lo, elo, width, "entropyRange.lo"); assertWithinBin(e.hi, ehi, width, "entropyRange.hi")
        for (name, r) in [("percentile", p), ("mse", m)] {
            XCTAssertEqual(r.lo, -0.17, accuracy: 0.02, "\(name) keeps the negative side")
            XCTAssertLessThan(r.hi, h.upper, "\(name) clips the top")
            XCTAssertGreaterThan(r.hi, 2, name)
        }
        XCTAssertLessThan(e.lo, 0); XCTAssertLessThan(e.lo, e.hi); XCTAssertLessThanOrEqual(e.hi, h.upper)
    }

    // MARK: (5) weights

    func testMseWeightMatchesNumpy() throws {
        var rng = Rng(state: 5)
        var row = (0..<768).map { _ in Float(0.02 * rng.gaussian()) }
        row[100] = 0.21
        let t = row.withUnsafeBufferPointer { HistogramThreshold.mseWeight($0, levels: 127) }
        let ref = float(try python("weight", row, ["--levels", "127"]), "mseWeight")
        let amax = row.map { abs($0) }.max()!
        XCTAssertEqual(t, ref, accuracy: amax / 200 * 1.0001)
        print("mseWeight: swift \(t) numpy \(ref) amax \(amax) \(t == ref ? "exact" : "differ")")
        XCTAssertLessThanOrEqual(t, amax)
        XCTAssertGreaterThanOrEqual(t, amax / 2)
    }

    // MARK: (6) degenerate inputs

    func testDegenerateInputsGiveFiniteThresholds() {
        var zeros = ActivationHistogram(lower: 0, upper: 0)
        zeros.add([Float](repeating: 0, count: 10), absolute: true)
        XCTAssertTrue(zeros.isDegenerate)
        XCTAssertEqual(zeros.total, 10)
        XCTAssertEqual(HistogramThreshold.percentile(zeros, percentile: 99.9), 0)
        XCTAssertEqual(HistogramThreshold.entropy(zeros, quantizedBins: 128), 0)
        XCTAssertEqual(HistogramThreshold.mse(zeros, levels: 127), 0)
        for r in [HistogramThreshold.percentileRange(zeros, percentile: 99.9), HistogramThreshold.mseRange(zeros, steps: 255),
                  HistogramThreshold.entropyRange(zeros, quantizedBins: 256)] {
            XCTAssertEqual(r.lo, 0); XCTAssertEqual(r.hi, 0)
        }

        var one = ActivationHistogram(lower: 0, upper: 3)
        one.add([3, 3, -3, .nan], absolute: true)
        XCTAssertEqual(one.total, 3, "NaN is skipped")
        XCTAssertEqual(one.counts[2047], 3)
        var single = ActivationHistogram(lower: -2, upper: 3, bins: 64)
        single.add([3, -2, .infinity, -.infinity], absolute: false)
        XCTAssertEqual(single.counts[0], 2); XCTAssertEqual(single.counts[63], 2)
        let empty = ActivationHistogram(lower: 0, upper: 5)
        let few = ActivationHistogram(lower: 0, upper: 5, bins: 16)
        for h in [one, empty, few, handMade([0, 0, 0, 5])] {
            for t in [HistogramThreshold.percentile(h, percentile: 99.99), HistogramThreshold.entropy(h, quantizedBins: 128),
                      HistogramThreshold.mse(h, levels: 127)] {
                XCTAssertTrue(t.isFinite && t > 0 && t <= h.upper, "\(t) on \(h.counts.prefix(4))")
            }
        }
        // A tensor of one repeated value keeps it: nothing to clip (the MSE sees it at the last bin's
        // centre, so edges 2047 and 2048 are equally good).
        XCTAssertEqual(HistogramThreshold.entropy(one, quantizedBins: 128), 3)
        XCTAssertGreaterThanOrEqual(HistogramThreshold.mse(one, levels: 127), 3 - 2 * 3 / 2048)
        XCTAssertEqual(HistogramThreshold.percentile(empty, percentile: 99.99), 5)
        for h in [single, empty, ActivationHistogram(lower: -1, upper: 2, bins: 8)] {
            for r in [HistogramThreshold.percentileRange(h, percentile: 99.99), HistogramThreshold.mseRange(h, steps: 255),
                      HistogramThreshold.entropyRange(h, quantizedBins: 256)] {
                XCTAssertTrue(r.lo.isFinite && r.hi.isFinite && r.lo < r.hi && r.lo >= h.lower && r.hi <= h.upper, "\(r)")
            }
        }
        XCTAssertEqual([Float]().withUnsafeBufferPointer { HistogramThreshold.mseWeight($0, levels: 127) }, 0)
        XCTAssertEqual([Float](repeating: 0, count: 8).withUnsafeBufferPointer { HistogramThreshold.mseWeight($0, levels: 127) }, 0)
        XCTAssertEqual([Float.nan, 0.5].withUnsafeBufferPointer { HistogramThreshold.mseWeight($0, levels: 127) }, 0.5)
    }

    // MARK: the KL search's logarithm

    func testPortableLogIsWithinOneUlpOfLibm() {
        var rng = Rng(state: 13)
        var xs: [Double] = [1, 2, 0.5, 1e-4, 3, 1e6, 2.0.squareRoot(), 0.5.squareRoot(), 1 + 1e-12, 1 - 1e-12, .leastNormalMagnitude, .greatestFiniteMagnitude]
        for _ in 0..<100_000 { xs.append(Double(bitPattern: rng.next() >> 2 & 0x7FEF_FFFF_FFFF_FFFF | 0x0010_0000_0000_0000)) }
        for i in 0..<10_000 { xs.append(1 + Double(i - 5000) * 1e-5) }
        for x in xs {
            let a = portableLog(x), b = Foundation.log(x)
            XCTAssertLessThanOrEqual(abs(a - b), b.magnitude.ulp, "log(\(x)): \(a) vs \(b)")
        }
        XCTAssertEqual(portableLog(1), 0)
        XCTAssertEqual(portableLog(0), -.infinity)
        XCTAssertTrue(portableLog(-1).isNaN)
    }

    // MARK: timing (printed, not asserted)

    func testTimingOfViTTinySizedCalibration() {
        // ~400 tensors of ViT-Tiny: 2048-bin histograms of differently tailed data.
        var rng = Rng(state: 3)
        var hs: [ActivationHistogram] = []
        for t in 0..<400 {
            var v = (0..<20_000).map { _ in Float(rng.laplace(1 + Double(t % 7))) }
            v.append(Float(30 + t % 50) * (1 + Float(t % 7)))
            hs.append(Self.symmetricHistogram(v))
        }
        func time(_ name: String, _ body: () -> Float) {
            let start = Date()
            var sum: Float = 0
            sum += body()
            print(String(format: "timing: %@ over %d histograms: %.3f s (checksum %g)", name, hs.count, Date().timeIntervalSince(start), Double(sum)))
        }
        time("entropy(128)") { hs.reduce(0) { $0 + HistogramThreshold.entropy($1, quantizedBins: 128) } }
        time("mse(127)") { hs.reduce(0) { $0 + HistogramThreshold.mse($1, levels: 127) } }
        time("percentile(99.99)") { hs.reduce(0) { $0 + HistogramThreshold.percentile($1, percentile: 99.99) } }
        var big = ActivationHistogram(lower: 0, upper: 80)
        let values = (0..<1_000_000).map { _ in Float(rng.laplace(1)) }
        let addStart = Date()
        for _ in 0..<10 { big.add(values, absolute: true) }
        print(String(format: "timing: add of 10M values: %.3f s", Date().timeIntervalSince(addStart)))
        let fifty = Array(hs.prefix(50))
        let start = Date()
        for h in fifty { _ = HistogramThreshold.mseRange(h, steps: 255); _ = HistogramThreshold.entropyRange(h, quantizedBins: 256) }
        print(String(format: "timing: mseRange + entropyRange over 50 histograms: %.3f s", Date().timeIntervalSince(start)))
    }
}
