import CVitqKernels
import VitqModels
import VitqQuant
import VitqTensor
import VitqTestSupport
import XCTest

/// The stage-2 unit (``CandidateScorer``) against independent computations: the engine's own
/// int8 layer output for the same quantizers, metrics recomputed from their definitions, and
/// the thread count having no effect on the bits.
final class SearchScorerTests: XCTestCase {
    static let op = "blocks.0.mlp.fc1"

    /// ViT-Tiny and a 3-image shard with random inputs, the float layer's outputs and random gradients.
    func makeScorer() throws -> (VisionTransformer, CandidateScorer, Linear) {
        try Fixtures.require()
        let vit = try VisionTransformer(path: Fixtures.vitTiny)
        let lin = vit.blocks[0].fc1 as! Linear
        let store = CalibrationStore(images: 10..<13)
        let rows = 197, k = lin.inFeatures, n = lin.outFeatures
        var rng = SeededRandom(seed: 3)
        let x = try store.tensor("\(Self.op).input", imageShape: [rows, k])
        let o = try store.tensor("\(Self.op).output", imageShape: [rows, n])
        let g = try store.tensor("\(Self.op).grad", imageShape: [rows, n])
        for i in 0..<3 {
            for j in 0..<(rows * k) { x.image(i)[j] = Float(rng.normal()) * (j % 97 == 0 ? 6 : 1) }
            lin.forward(x.image(i), rows: rows, into: o.image(i))
            for j in 0..<(rows * n) { g.image(i)[j] = Float(rng.normal()) * 1e-3 }
        }
        return (vit, CandidateScorer(model: vit, store: store), lin)
    }

    func quantizers(_ lin: Linear) -> (TensorQuant, TensorQuant) {
        let w = TensorQuant(scheme: QuantScheme(bits: 8, signed: true, narrow: true), granularity: .perTensor, scales: [0.004])
        let x = TensorQuant(scheme: QuantScheme(bits: 8, signed: true), granularity: .perTensor, scales: [0.05])
        return (w, x)
    }

    func testScoresMatchTheEngineOutput() throws {
        let (_, scorer, lin) = try makeScorer()
        let (wq, xq) = quantizers(lin)
        let mults: [Float] = [0.5, 1, 1.1]
        let rows = 197, n = lin.outFeatures
        let x = scorer.store["\(Self.op).input"], o = scorer.store["\(Self.op).output"], g = scorer.store["\(Self.op).grad"]
        for metric in SearchMetric.allCases {
            let task = SearchTask(op: Self.op, operand: .second, candidates: CandidateSet(base: .uniform(xq), multipliers: mults),
                                  current: [.uniform(wq), .uniform(xq)], groups: 1, metric: metric)
            let scores = scorer.score(task)
            for (c, m) in mults.enumerated() {
                var cq = xq
                cq.scales[0] *= m
                let engine = Int8Linear(weight: QuantizedWeight(weight: lin.weight, bias: lin.bias, quant: wq), input: .uniform(cq))
                // The definitions, image by image, from the engine's output.
                var mse = 0.0, hess = 0.0, cosSum = 0.0, dplr = 0.0
                var p = [Double](repeating: 0, count: 6)
                for i in 0..<3 {
                    let y = Tensor(zeros: [rows, n])
                    engine.forward(x.image(i), rows: rows, into: y.data)
                    var dot = 0.0, oo = 0.0, hh = 0.0, firstOrder = 0.0
                    for j in 0..<(rows * n) {
                        let a = Double(o.image(i)[j]), b = Double(y.data[j]), d = b - a, gr = Double(g.image(i)[j])
                        mse += d * d; hess += gr * gr * d * d; dot += a * b; oo += a * a; hh += b * b
                        dplr += gr * gr * d * d; firstOrder += gr * d
                        p[0] += 1; p[1] += a; p[2] += b; p[3] += a * b; p[4] += a * a; p[5] += b * b
                    }
                    cosSum += dot / (oo * hh).squareRoot()
                    dplr += firstOrder * firstOrder   // the rank-one term, squared per image
                }
                let got = scores.values[c * scores.stats..<(c + 1) * scores.stats]
                switch metric {
                case .mse: XCTAssertEqual(got.first!, mse, accuracy: mse * 1e-9)
                case .hessian: XCTAssertEqual(got.first!, hess, accuracy: hess * 1e-9)
                case .hessianDPLR:
                    XCTAssertEqual(got.first!, dplr, accuracy: dplr * 1e-9)
                    XCTAssertGreaterThan(dplr, hess * (1 + 1e-6), "the rank-one term adds to the diagonal")
                case .cosine: XCTAssertEqual(got.first!, cosSum, accuracy: 1e-9)
                case .pearson:
                    let nn = p[0], cov = p[3] - p[1] * p[2] / nn
                    let r = cov / ((p[4] - p[1] * p[1] / nn) * (p[5] - p[2] * p[2] / nn)).squareRoot()
                    XCTAssertEqual(metric.score(got), -r, accuracy: 1e-9)
                    XCTAssertEqual(got.first!, nn)
                }
            }
        }
    }

    func testPerChannelGroupsChooseIndependently() throws {
        let (_, scorer, lin) = try makeScorer()
        let (_, xq) = quantizers(lin)
        let n = lin.outFeatures, k = lin.inFeatures
        let rowMax = (0..<n).map { r in (0..<k).reduce(Float(0)) { max($0, abs(lin.weight.data[r * k + $1])) } }
        let wq = TensorQuant(scheme: QuantScheme(bits: 4, signed: true, narrow: true), granularity: .perChannel, scales: rowMax.map { $0 / 7.5 })
        let mults = CandidateSet.linear(alpha: 0.3, beta: 1.2, count: 10)
        let perChannel = scorer.score(SearchTask(op: Self.op, operand: .first, candidates: CandidateSet(base: .uniform(wq), multipliers: mults),
                                                 current: [.uniform(wq), .uniform(xq)], groups: n, metric: .mse))
        let whole = scorer.score(SearchTask(op: Self.op, operand: .first, candidates: CandidateSet(base: .uniform(wq), multipliers: mults),
                                            current: [.uniform(wq), .uniform(xq)], groups: 1, metric: .mse))
        // The whole-tensor MSE is the sum of the per-channel ones, for every candidate.
        for c in 0..<mults.count {
            let sum = (0..<n).reduce(0.0) { $0 + perChannel.values[c * n + $1] }
            XCTAssertEqual(sum, whole.values[c], accuracy: whole.values[c] * 1e-12)
        }
        // Each channel's winner is its own argmin, so the per-channel total is never worse.
        let winners = perChannel.winners(SearchMetric.mse.score)
        let best = (0..<n).reduce(0.0) { $0 + perChannel.values[winners[$1] * n + $1] }
        XCTAssertLessThanOrEqual(best, whole.values[whole.winners(SearchMetric.mse.score)[0]])
        XCTAssertGreaterThan(Set(winners).count, 1)
    }

    func testThreadCountDoesNotChangeTheBits() throws {
        let (_, scorer, lin) = try makeScorer()
        let (wq, xq) = quantizers(lin)
        let task = SearchTask(op: Self.op, operand: .first, candidates: CandidateSet(base: .uniform(wq), multipliers: [0.8, 1, 1.2]),
                              current: [.uniform(wq), .uniform(xq)], groups: 1, metric: .hessian)
        let saved = Parallel.threads
        defer { Parallel.threads = saved }
        Parallel.threads = 1
        let one = scorer.score(task)
        Parallel.threads = 2
        XCTAssertEqual(scorer.score(task), one)
        Parallel.threads = 3
        XCTAssertEqual(scorer.score(task), one)
    }

    /// ``LocalExecutor`` runs each unit on every shard and merges the results: two copies of
    /// one shard give its ranges, and twice its statistics and sums (doubling is exact).
    func testLocalExecutorMergesEveryShard() throws {
        let (_, scorer, lin) = try makeScorer()
        let (wq, xq) = quantizers(lin)
        let executor = LocalExecutor(scorers: [scorer, scorer])
        XCTAssertEqual(try executor.run(.ranges(op: Self.op), as: \.ranges), scorer.ranges(Self.op))
        let task = SearchTask(op: Self.op, operand: .second, candidates: CandidateSet(base: .uniform(xq), multipliers: [0.9, 1.1]),
                              current: [.uniform(wq), .uniform(xq)], groups: 1, metric: .mse)
        XCTAssertEqual(try executor.run(.score(task), as: \.scores).values, scorer.score(task).values.map { 2 * $0 })
        let errorTask = OutputErrorTask(op: Self.op, weight: .uniform(wq), input: .uniform(xq))
        let one = scorer.outputError(errorTask), two = try executor.run(.outputError(errorTask), as: \.outputError)
        XCTAssertEqual(two.sums, one.sums.map { 2 * $0 })
        XCTAssertEqual(two.rows, 2 * one.rows)
        XCTAssertEqual([two.inputAbsSum, two.squaredError, two.squaredReference],
                       [one.inputAbsSum, one.squaredError, one.squaredReference].map { 2 * $0 })
    }

    /// A result that does not answer its unit is an error naming the unit, not a trap.
    func testAnUnusableAnswerIsAnErrorNamingTheUnit() {
        final class RangesOnly: SearchExecutor { func run(_ unit: WorkUnit) -> WorkResult { .ranges([1]) } }
        let q = OperandQuant.uniform(TensorQuant(scheme: QuantScheme(bits: 8, signed: true), granularity: .perTensor, scales: [0.05]))
        let task = SearchTask(op: Self.op, operand: .first, candidates: CandidateSet(base: q, multipliers: [1]),
                              current: [q, q], groups: 1, metric: .mse)
        XCTAssertThrowsError(try RangesOnly().run(.score(task), as: \.scores)) {
            XCTAssertEqual("\($0)", "score of op \(Self.op): answered with a ranges result")
        }
        XCTAssertThrowsError(try LocalExecutor(scorers: []).run(.ranges(op: Self.op))) {
            XCTAssertEqual("\($0)", "ranges of op \(Self.op): the results of 0 shard(s) do not merge")
        }
    }

    func testPearsonAndCosineFromStatistics() {
        // o = [1, 2, 3], ô = [2, 4, 7]: Pearson r and cosine by hand.
        let o: [Double] = [1, 2, 3], h: [Double] = [2, 4, 7]
        let stats: [Double] = [3, 6, 13, 1 * 2 + 2 * 4 + 3 * 7, 14, 4 + 16 + 49]
        let mo = 2.0, mh = 13.0 / 3
        let cov = zip(o, h).reduce(0) { $0 + ($1.0 - mo) * ($1.1 - mh) }
        let r = cov / (o.reduce(0) { $0 + ($1 - mo) * ($1 - mo) } * h.reduce(0) { $0 + ($1 - mh) * ($1 - mh) }).squareRoot()
        XCTAssertEqual(SearchMetric.pearson.score(stats[...]), -r, accuracy: 1e-12)
        var acc = [0.0]
        let col: [Double] = [29, 14, 69]
        col.withUnsafeBufferPointer { SearchMetric.cosine.fold(image: $0.baseAddress!, count: 3, into: &acc) }
        XCTAssertEqual(acc[0], 29 / (14.0 * 69).squareRoot(), accuracy: 1e-15)
    }

    func testRankingLossCountsOrderInversionsOfNeighbours() {
        // FP row o = [0.1, 0.3, 0.2] sorts as 0, 2, 1; ô = [0.1, 0.15, 0.2] keeps 0 < 2 but inverts
        // 2 < 1 by 0.05: with margin 0 the loss is 0.05, with margin 0.1 it is (0.1 − 0.1) + (0.1 + 0.05).
        let o: [Float] = [0.1, 0.3, 0.2], h: [Float] = [0.1, 0.15, 0.2]
        var order = [Int32](repeating: 0, count: 3)
        vitq_rank_order_rows(o, 1, 3, &order)
        XCTAssertEqual(order, [0, 2, 1])
        XCTAssertEqual(vitq_rank_loss_rows(h, order, 1, 3, 0), 0.05, accuracy: 1e-7)
        XCTAssertEqual(vitq_rank_loss_rows(h, order, 1, 3, 0.1), 0.15, accuracy: 1e-7)
        XCTAssertEqual(vitq_rank_loss_rows(o, order, 1, 3, 0), 0)
    }

    func testRankingTermIsTheMeanHingePerPairWeightedByGamma() {
        let cands = CandidateSet(base: .uniform(TensorQuant(scheme: QuantScheme(bits: 8, signed: true), granularity: .perTensor, scales: [0.1])),
                                 multipliers: [1])
        let task = SearchTask(op: "blocks.0.attn.matmul1", operand: .first, candidates: cands, current: [], groups: 1,
                              metric: .mse, rankingWeight: 0.5, rankingMargin: 0)
        XCTAssertTrue(task.ranks)
        XCTAssertEqual(task.statsPerGroup, 3)
        // mse 2.0 + 0.5 · (3.0 hinge / 12 pairs)
        XCTAssertEqual(task.score([2.0, 3.0, 12.0][...]), 2.125, accuracy: 1e-15)
        // Doubling the images doubles hinge and pairs: the ranking term stays the same.
        XCTAssertEqual(task.score([2.0, 6.0, 24.0][...]) - 2.0, 0.125, accuracy: 1e-15)
        var fc = task
        fc.op = "blocks.0.mlp.fc1"
        XCTAssertFalse(fc.ranks)
        XCTAssertEqual(fc.score([2.0][...]), 2.0)
    }

    func testTasksRoundTripThroughJSON() throws {
        let (_, _, lin) = try makeScorer()
        let (wq, xq) = quantizers(lin)
        let task = SearchTask(op: Self.op, operand: .second, candidates: CandidateSet(base: .uniform(xq), multipliers: [0.5, 1]),
                              current: [.uniform(wq), .uniform(xq)], groups: 1, metric: .pearson)
        XCTAssertEqual(try JSONDecoder().decode(SearchTask.self, from: JSONEncoder().encode(task)), task)
    }
}
