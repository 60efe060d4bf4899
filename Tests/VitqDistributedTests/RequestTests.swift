import VitqDistributed
import VitqQuant
import XCTest

/// Requests: one unit on every shard, sent once a shard is ready, complete when every shard
/// reported, reduced in shard order whatever the arrival order.
final class RequestTests: XCTestCase {
    func running(shards: Int = 4, workers: Int = 2) -> Driver {
        var d = Driver(Fx.settings(shards: shards, workers: workers))
        d.join(Array(Fx.peers[0..<workers]))
        d.readyAll()
        return d
    }

    func reply(_ t: WorkTask, _ result: WorkResult) -> Message { .result(WorkReply(request: t.request, shard: t.shard, attempt: t.attempt, result: result)) }

    func testSubmitSendsOneTaskPerShardToItsOwner() {
        var d = running()
        let (id, out) = d.submit(.ranges(op: "blocks.0.attn.qkv"))
        XCTAssertEqual(out.tasks.map { $0.0.shard }, [0, 1, 2, 3])
        XCTAssertEqual(out.tasks.map { $0.1 }, [Fx.peers[0], Fx.peers[1], Fx.peers[0], Fx.peers[1]])
        XCTAssertTrue(out.tasks.allSatisfy { $0.0.request == id })
    }

    func testTasksWaitForStageOne() {
        var d = Driver(Fx.settings(shards: 2, workers: 1))
        d.join([Fx.peers[0]])
        let (_, out) = d.submit(.ranges(op: "a"))
        XCTAssertTrue(out.tasks.isEmpty)
        XCTAssertEqual(d.receive(.ready(shard: 1, attempt: 0), from: Fx.peers[0]).tasks.map { $0.0.shard }, [1])
    }

    func testRequestsSubmittedBeforeWorkersJoinAreSentOnReady() {
        var d = Driver(Fx.settings(shards: 1, workers: 1))
        let (id, _) = d.submit(.ranges(op: "a"))
        d.join([Fx.peers[0]])
        XCTAssertEqual(d.receive(.ready(shard: 0, attempt: 0), from: Fx.peers[0]).tasks.map { $0.0.request }, [id])
    }

    func testCompletesOnlyWhenEveryShardReported() {
        var d = running()
        let (id, out) = d.submit(.ranges(op: "a"))
        for (i, (t, p)) in out.tasks.enumerated() {
            let r = d.receive(reply(t, .ranges([Float(i)])), from: p)
            XCTAssertEqual(r.completions.count, i == 3 ? 1 : 0)
        }
        XCTAssertEqual(d.log.completions.first?.request, id)
        XCTAssertEqual(d.log.completions.first?.reduced, .ranges([3]))
        XCTAssertEqual(d.state.outstanding, [])
    }

    func testScoresAreBitIdenticalWhateverTheArrivalOrder() {
        let task = Fx.searchTask(candidates: 4, groups: 3)
        var local = task.emptyScores()
        for s in 0..<6 { local.add(Fx.scores(task, shard: s)) }
        for order in [[0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [3, 0, 5, 1, 4, 2]] {
            var d = running(shards: 6, workers: 3)
            let tasks = d.submit(.score(task)).1.tasks
            for i in order { d.receive(reply(tasks[i].0, .scores(Fx.scores(task, shard: i))), from: tasks[i].1) }
            guard case let .scores(s)? = d.log.completions.first?.reduced else { return XCTFail("no completion for order \(order)") }
            XCTAssertEqual(s.values.map(\.bitPattern), local.values.map(\.bitPattern), "order \(order)")
            XCTAssertEqual(d.log.completions.first?.perShard, (0..<6).map { .scores(Fx.scores(task, shard: $0)) })
        }
    }

    func testOutputErrorSumsReduceInShardOrder() {
        let sums = (0..<4).map { OutputErrorSums(sums: [1e16 * Double($0 % 2 == 0 ? 1 : -1), 0.1 * Double($0)], rows: 10, inputAbsSum: 0.3, squaredError: 0.7, squaredReference: 1.1) }
        var local = OutputErrorSums(channels: 2)
        for s in sums { local.add(s) }
        var d = running()
        let tasks = d.submit(.outputError(OutputErrorTask(op: "head", weight: Fx.uniform, input: Fx.uniform))).1.tasks
        for i in [2, 3, 1, 0] { d.receive(reply(tasks[i].0, .outputError(sums[i])), from: tasks[i].1) }
        XCTAssertEqual(d.log.completions.first?.reduced, .outputError(local))
    }

    func testDuplicateResultIsIgnored() {
        var d = running(shards: 2, workers: 1)
        let tasks = d.submit(.ranges(op: "a")).1.tasks
        d.receive(reply(tasks[0].0, .ranges([1])), from: Fx.peers[0])
        let dup = d.receive(reply(tasks[0].0, .ranges([9])), from: Fx.peers[0])
        XCTAssertEqual(dup.logs.count, 1)
        XCTAssertTrue(dup.drops.isEmpty)
        d.receive(reply(tasks[1].0, .ranges([2])), from: Fx.peers[0])
        XCTAssertEqual(d.log.completions.map(\.reduced), [.ranges([2])])
    }

    func testResultForAnUnknownRequestIsIgnored() {
        var d = running(shards: 1, workers: 1)
        let out = d.receive(.result(WorkReply(request: 99, shard: 0, attempt: 0, result: .ranges([1]))), from: Fx.peers[0])
        XCTAssertEqual(out.logs.count, 1)
        XCTAssertTrue(out.drops.isEmpty)
    }

    func testResultOfTheWrongShapeDropsTheWorker() {
        var d = running(shards: 2, workers: 2)
        let tasks = d.submit(.score(Fx.searchTask(candidates: 3, groups: 2))).1.tasks
        let wrong = ShardScores(candidates: 2, groups: 2, stats: 1)
        XCTAssertEqual(d.receive(reply(tasks[0].0, .scores(wrong)), from: tasks[0].1).drops, [tasks[0].1])
        XCTAssertEqual(d.state.outstanding.count, 1)
    }

    func testResultFromANonOwnerIsIgnored() {
        var d = running(shards: 2, workers: 2)
        let tasks = d.submit(.ranges(op: "a")).1.tasks
        XCTAssertEqual(tasks[0].1, Fx.peers[0])
        let out = d.receive(reply(tasks[0].0, .ranges([1])), from: Fx.peers[1])
        XCTAssertEqual(out.logs.count, 1)
        XCTAssertEqual(d.state.outstanding.count, 1)
    }

    func testConcurrentRequestsCompleteIndependently() {
        var d = running(shards: 2, workers: 2)
        let a = d.submit(.ranges(op: "a")).1.tasks, b = d.submit(.ranges(op: "b")).1.tasks
        for (t, p) in b + a { d.receive(reply(t, .ranges([Float(t.request)])), from: p) }
        XCTAssertEqual(d.log.completions.map(\.unit), [.ranges(op: "b"), .ranges(op: "a")])
    }
}
