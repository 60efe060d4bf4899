import Foundation
import VitqDistributed
import VitqQuant
import XCTest

/// The shard-order reduction, and the wire form of units.
final class ReductionTests: XCTestCase {
    func testRangesReduceByElementwiseMax() {
        XCTAssertEqual(Reduction.reduce([.ranges([1, 5, 0]), .ranges([3, 2, 0]), .ranges([2, 2, 7])], for: .ranges(op: "a")), .ranges([3, 5, 7]))
    }

    func testScoresEqualTheLocalSearchSum() {
        let task = Fx.searchTask()
        var local = task.emptyScores()
        for s in 0..<3 { local.add(Fx.scores(task, shard: s)) }
        XCTAssertEqual(Reduction.reduce((0..<3).map { .scores(Fx.scores(task, shard: $0)) }, for: .score(task)), .scores(local))
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
