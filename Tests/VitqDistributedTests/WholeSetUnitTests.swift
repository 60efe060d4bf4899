import Foundation
import VitqDistributed
import VitqQuant
import XCTest

/// Whole-set units (block reconstruction): each goes to one shard's owner, which answers for
/// every image; they spread over the shards like the shards over the workers; a dropped
/// owner's unit follows its shard; a RESULT that does not fit its task drops the worker; the
/// TASK and the RESULT cross the wire bit for bit.
final class WholeSetUnitTests: XCTestCase {
    static let fc1 = "blocks.0.mlp.fc1"
    static let weight = OperandQuant.uniform(TensorQuant(scheme: QuantScheme(bits: 4, signed: true, narrow: true), granularity: .perChannel, scales: [0.1, 0.2]))

    static func task(_ index: Int = 1) -> ReconstructionTask {
        ReconstructionTask(unit: "blocks.0", index: index, decisions: [OpDecision(op: fc1, quantizers: [weight, Fx.uniform], bias: nil)])
    }

    /// A kept outcome for `task()`: fc1 (2 × 3 weights in the shapes below) with learned integers and a learned input step.
    static func outcome(integers: [Int8] = [-7, 0, 7, 3, -2, 1], kept: Bool = true) -> ReconstructionOutcome {
        let stats = UnitReconstructionStats(unit: "blocks.0", lossBefore: 2.5, lossAfter: 1.25, kept: kept, binarised: 0.99, iterations: 30, seconds: 1.5)
        let input = OperandQuant.uniform(TensorQuant(scheme: QuantScheme(bits: 8, signed: true), granularity: .perTensor, scales: [0.0213]))
        return kept ? ReconstructionOutcome(integers: [fc1: integers], inputs: [fc1: input], units: [stats]) : ReconstructionOutcome(units: [stats])
    }

    func settings(shards: Int, workers: Int) -> CoordinatorSettings {
        var s = Fx.settings(shards: shards, workers: workers)
        s.shapes[Self.fc1] = OpShape(ranges: 1, channels: 2, weights: 6)
        return s
    }

    func running(shards: Int = 4, workers: Int = 2) -> Driver {
        var d = Driver(settings(shards: shards, workers: workers))
        d.join(Array(Fx.peers[0..<workers]))
        d.readyAll()
        return d
    }

    func reply(_ t: WorkTask, _ result: WorkResult) -> Message { .result(WorkReply(request: t.request, shard: t.shard, attempt: t.attempt, result: result)) }

    func testEachWholeSetUnitGoesToOneShardsOwnerAndCompletesWithItsOneAnswer() {
        var d = running(shards: 4, workers: 2)
        var sent: [(WorkTask, PeerID)] = []
        for i in 0..<6 { sent += d.submit(.reconstruct(Self.task(i))).1.tasks }
        XCTAssertEqual(sent.map { $0.0.shard }, [0, 1, 2, 3, 0, 1], "the k-th unit goes to shard k mod 4 alone")
        XCTAssertEqual(sent.map { $0.1 }, [0, 1, 0, 1, 0, 1].map { Fx.peers[$0] }, "spread over the owners")
        let out = d.receive(reply(sent[2].0, .reconstruction(Self.outcome())), from: sent[2].1)
        XCTAssertEqual(out.completions.count, 1)
        XCTAssertEqual(out.completions.first?.perShard.count, 1)
        XCTAssertEqual(out.completions.first?.reduced, .reconstruction(Self.outcome()))
    }

    func testADroppedOwnersUnitFollowsItsShard() {
        var d = running(shards: 2, workers: 2)
        let (_, out) = d.submit(.reconstruct(Self.task()))
        let (t, owner) = out.tasks[0]
        XCTAssertEqual(owner, Fx.peers[0])
        d.receive(.bye(.leaving, reason: "killed"), from: owner)
        XCTAssertEqual(d.state.owner(of: t.shard), Fx.peers[1])
        let resent = d.receive(.ready(shard: t.shard, attempt: d.state.attempt(of: t.shard)), from: Fx.peers[1]).tasks
        XCTAssertEqual(resent.map { $0.1 }, [Fx.peers[1]])
        XCTAssertEqual(resent.first?.0.unit, .reconstruct(Self.task()))
        XCTAssertEqual(d.receive(reply(resent[0].0, .reconstruction(Self.outcome())), from: Fx.peers[1]).completions.count, 1)
    }

    func testAResultThatDoesNotFitItsTaskDropsTheWorkerAndTheUnitIsRedone() {
        var bad: [(String, ReconstructionOutcome)] = [
            ("one integer short", Self.outcome(integers: [-7, 0, 7, 3, -2])),
            ("outside the 4-bit grid", Self.outcome(integers: [-7, 0, 8, 3, -2, 1])),
        ]
        var notKept = Self.outcome(kept: false)
        notKept.integers = Self.outcome().integers
        bad.append(("learned values although not kept", notKept))
        var otherOp = Self.outcome()
        otherOp.integers = ["blocks.0.attn.qkv": [0, 0, 0, 0, 0, 0]]
        bad.append(("an op that is not the task's", otherOp))
        var nan = Self.outcome()
        nan.units[0].lossAfter = .nan
        bad.append(("a NaN loss", nan))
        var wrongUnit = Self.outcome()
        wrongUnit.units[0].unit = "blocks.1"
        bad.append(("another unit", wrongUnit))
        for (what, outcome) in bad {
            var d = running(shards: 2, workers: 2)
            let (t, owner) = d.submit(.reconstruct(Self.task())).1.tasks[0]
            let out = d.receive(reply(t, .reconstruction(outcome)), from: owner)
            XCTAssertEqual(out.drops, [owner], what)
            XCTAssertTrue(out.completions.isEmpty, what)
            XCTAssertEqual(d.state.owner(of: t.shard), Fx.peers[1], what)
        }
    }

    func testTheTaskAndTheResultCrossTheWireBitForBit() throws {
        let codec = MessageCodec(shardCount: 4)
        for m in [Message.task(WorkTask(request: 3, shard: 1, attempt: 0, unit: .reconstruct(Self.task()))),
                  .result(WorkReply(request: 3, shard: 1, attempt: 0, result: .reconstruction(Self.outcome()))),
                  .result(WorkReply(request: 3, shard: 1, attempt: 0, result: .reconstruction(Self.outcome(kept: false))))] {
            let frames = try codec.encode(m)
            XCTAssertEqual(try codec.decode(frames), Envelope(message: m))
        }
        // The integers travel one byte each; a frame of another length is refused.
        var frames = try codec.encode(.result(WorkReply(request: 3, shard: 1, attempt: 0, result: .reconstruction(Self.outcome()))))
        XCTAssertEqual(frames[2].count, 6)
        frames[2].append(0)
        XCTAssertThrowsError(try codec.decode(frames)) { XCTAssertTrue("\($0)".contains("7"), "\($0)") }
    }

    func testIdenticalIgnoresOnlyTheSecondsAUnitTook() {
        var slower = Self.outcome()
        slower.units[0].seconds = 99
        XCTAssertTrue(ResultCheck.identical(.reconstruction(Self.outcome()), .reconstruction(slower)))
        var other = Self.outcome()
        other.units[0].lossAfter = other.units[0].lossAfter.nextUp
        XCTAssertFalse(ResultCheck.identical(.reconstruction(Self.outcome()), .reconstruction(other)))
        XCTAssertFalse(ResultCheck.identical(.reconstruction(Self.outcome()), .reconstruction(Self.outcome(integers: [-7, 0, 7, 3, -2, 2]))))
    }
}
