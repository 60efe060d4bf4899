import VitqDistributed
import VitqQuant
import VitqRuntime
import XCTest

/// The test worker's lies never crash the liar itself on an empty answer.
final class WorkerLieTests: XCTestCase {
    func testLiesOnAnEmptyScoreTableOrRangesLeaveItUnchanged() {
        let empty = WorkResult.scores(ShardScores(candidates: 0, groups: 0, stats: 0, values: []))
        XCTAssertEqual(WorkerLie.nan.apply(empty), empty)
        XCTAssertEqual(WorkerLie.values.apply(empty), empty)
        XCTAssertEqual(WorkerLie.inf.apply(.ranges([])), .ranges([]))
    }
}
