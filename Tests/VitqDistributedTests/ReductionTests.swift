import Foundation
import VitqDistributed
import VitqQuant
import XCTest

/// The shard-order reduction, and the wire form of units.
final class ReductionTests: XCTestCase {
    func testRangesReduceByElementwiseMax() {
        XCTAssertEqual(Reduction.reduce([.ranges([1, 5, 0]), .ranges([3, 2, 0]), .ranges([2, 2, 7])], for: .ranges(op: "a")), .ranges([3, 5, 7]))
    }

    /// Scores add from zero in shard order. Candidate 0's first group makes the order visible:
    /// (0 + 1) + 10¹⁶ rounds to 10¹⁶ (the spacing there is 2; the tie goes to the even
    /// significand), so shard order gives 0 where the reverse order, or adding the two ±10¹⁶
    /// first, gives 1.
    func testScoresAddFromZeroInShardOrder() {
        let task = Fx.searchTask(candidates: 1, groups: 2)
        let shards: [[Double]] = [[1, 0.5], [1e16, 0.25], [-1e16, 2]]
        let perShard = shards.map { WorkResult.scores(ShardScores(candidates: 1, groups: 2, stats: 1, values: $0)) }
        XCTAssertEqual(Reduction.reduce(perShard, for: .score(task)), .scores(ShardScores(candidates: 1, groups: 2, stats: 1, values: [0, 2.75])))
    }

    func testOutputErrorSumsAddFieldByField() {
        let unit = WorkUnit.outputError(OutputErrorTask(op: "h", weight: Fx.uniform, input: Fx.uniform))
        let a = OutputErrorSums(sums: [1, 2], rows: 3, inputAbsSum: 0.5, squaredError: 0.25, squaredReference: 1)
        let b = OutputErrorSums(sums: [0.5, -2], rows: 4, inputAbsSum: 1.5, squaredError: 0.75, squaredReference: 3)
        XCTAssertEqual(Reduction.reduce([.outputError(a), .outputError(b)], for: unit),
                       .outputError(OutputErrorSums(sums: [1.5, 0], rows: 7, inputAbsSum: 2, squaredError: 1, squaredReference: 4)))
    }

    func testMismatchedShapesAreRefusedNotTrapped() {
        XCTAssertNil(Reduction.reduce([.ranges([1]), .ranges([1, 2])], for: .ranges(op: "a")))
        XCTAssertNil(Reduction.reduce([.scores(ShardScores(candidates: 1, groups: 1, stats: 1))], for: .score(Fx.searchTask())))
        XCTAssertNil(Reduction.reduce([.ranges([1])], for: .outputError(OutputErrorTask(op: "h", weight: Fx.uniform, input: Fx.uniform))))
        XCTAssertNil(Reduction.reduce([], for: .ranges(op: "a")))
    }

    func testUnitWireForm() throws {
        let e = JSONEncoder()
        e.outputFormatting = .sortedKeys
        XCTAssertEqual(String(decoding: try e.encode(WorkUnit.ranges(op: "head")), as: UTF8.self), "{\"ranges\":{\"op\":\"head\"}}")
        let json = String(decoding: try e.encode(WorkUnit.score(Fx.searchTask())), as: UTF8.self)
        XCTAssertTrue(json.hasPrefix("{\"score\":{"), json)
    }
}
