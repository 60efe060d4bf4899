import Foundation
import VitqDistributed
import VitqQuant
import XCTest

/// Round trips of every message type through frames, and the typed errors of bad frames.
final class MessageCodecTests: XCTestCase {
    let codec = MessageCodec(shardCount: 4)
    /// The header version of the hand-made frames: the one this build speaks.
    let v = ProtocolVersion.current

    func roundTrip(_ m: Message, file: StaticString = #filePath, line: UInt = #line) throws {
        let frames = try codec.encode(m)
        XCTAssertEqual(frames[0], Data([m.type.rawValue, ProtocolVersion.current]), file: file, line: line)
        XCTAssertEqual(try codec.decode(frames), Envelope(message: m), file: file, line: line)
    }

    func testHello() throws { try roundTrip(.hello(Hello(versions: [1, 2], name: "node3:4242"))) }
    func testJobWithPaths() throws { try roundTrip(.job(Fx.job(shards: 4), blobs: [])) }
    func testJobWithInlineBytes() throws {
        var job = Fx.job(shards: 4)
        job.model = .inline(frame: 2, sha256: Fx.sha)
        job.images = .inline(frame: 3, sha256: Fx.sha)
        try roundTrip(.job(job, blobs: [Data([1, 2, 3]), Data(count: 1000)]))
    }
    func testAssignAndReady() throws {
        try roundTrip(.assign(shard: 3, attempt: 2))
        try roundTrip(.ready(shard: 0, attempt: 0))
    }
    func testTaskRanges() throws { try roundTrip(.task(WorkTask(request: 7, shard: 1, attempt: 0, unit: .ranges(op: "blocks.2.attn.matmul1")))) }
    func testTaskScore() throws { try roundTrip(.task(WorkTask(request: .max, shard: 2, attempt: 5, unit: .score(Fx.searchTask())))) }
    func testTaskScoreTravelsWithEveryMetric() throws {
        for metric in SearchMetric.allCases {
            var t = Fx.searchTask()
            t.metric = metric
            try roundTrip(.task(WorkTask(request: 3, shard: 0, attempt: 0, unit: .score(t))))
        }
    }
    func testTaskTwinSoftmaxScore() throws {
        let twin = OperandQuant.twin([TwinCandidates.softmax(delta2: 1.0 / 128, bits: 8, shift: 3)])
        let t = SearchTask(op: "blocks.0.attn.matmul2", operand: .first, candidates: CandidateSet(base: twin, multipliers: [], shifts: [0, 1, 2]),
                           current: [twin, Fx.uniform], groups: 1, metric: .cosine, rankingWeight: 0.5, rankingMargin: 0.1)
        try roundTrip(.task(WorkTask(request: 1, shard: 0, attempt: 0, unit: .score(t))))
    }
    func testPerTokenInputsTravelAndMisplacedOperandsAreRefused() throws {
        let token = OperandQuant.perToken(QuantScheme(bits: 8, signed: true))
        var t = Fx.searchTask()
        t.current = [Fx.uniform, token]
        try roundTrip(.task(WorkTask(request: 2, shard: 0, attempt: 0, unit: .score(t))))
        try roundTrip(.task(WorkTask(request: 3, shard: 0, attempt: 0, unit: .outputError(OutputErrorTask(op: "head", weight: Fx.uniform, input: token)))))
        // A per-token weight, or a per-token matmul operand, would stop the scorer: refused when decoded.
        var weight = t
        weight.candidates = CandidateSet(base: token, multipliers: [1])
        var matmul = Fx.searchTask()
        matmul.op = "blocks.0.attn.matmul1"
        matmul.current = [Fx.uniform, token]
        for (label, unit) in [("per-token weight", WorkUnit.score(weight)), ("per-token matmul operand", .score(matmul)),
                              ("per-token weight (bias correction)", .outputError(OutputErrorTask(op: "head", weight: token, input: Fx.uniform)))] {
            XCTAssertThrowsError(try codec.decode(try codec.encode(.task(WorkTask(request: 4, shard: 0, attempt: 0, unit: unit)))), label) { e in
                XCTAssertTrue("\(e)".contains("current"), "\(label): \(e)")
            }
        }
    }
    func testTaskOutputError() throws {
        try roundTrip(.task(WorkTask(request: 9, shard: 3, attempt: 1, unit: .outputError(OutputErrorTask(op: "head", weight: Fx.uniform, input: Fx.uniform)))))
    }
    func testResultRanges() throws {
        try roundTrip(.result(WorkReply(request: 1, shard: 0, attempt: 0, result: .ranges([0, 1.5, .greatestFiniteMagnitude, .infinity]))))
    }
    func testResultScores() throws {
        let task = Fx.searchTask()
        try roundTrip(.result(WorkReply(request: 2, shard: 1, attempt: 0, result: .scores(Fx.scores(task, shard: 1)))))
    }
    func testResultOutputError() throws {
        let e = OutputErrorSums(sums: [1e-300, -2.5, .pi], rows: 197, inputAbsSum: 12.25, squaredError: 0.1, squaredReference: 1e12)
        try roundTrip(.result(WorkReply(request: 3, shard: 2, attempt: 1, result: .outputError(e))))
    }
    func testResultCarriesTheWorkersMemory() throws {
        let m = WorkerMemory(peakResidentBytes: 3_400_000_000, bytesSpilled: 1 << 33)
        try roundTrip(.result(WorkReply(request: 4, shard: 3, attempt: 2, result: .ranges([1]), memory: m)))
        let frames = try codec.encode(.result(WorkReply(request: 4, shard: 3, attempt: 2, result: .ranges([1]), memory: m)))
        XCTAssertTrue(String(decoding: frames[1], as: UTF8.self).contains("\"peakRSS\":3400000000"))
    }
    func testHeartbeatErrorBye() throws {
        try roundTrip(.heartbeat)
        try roundTrip(.error(code: .integrity, message: "sha256 mismatch for /data/cal.npy"))
        try roundTrip(.bye(.runFinished, reason: "run finished"))
        try roundTrip(.bye(.leaving, reason: "shutting down"))
    }

    func testResultValuesAreBitExact() throws {
        let odd: [Double] = [-0.0, .nan, .infinity, -.infinity, .leastNonzeroMagnitude, 0.1 + 0.2]
        let s = ShardScores(candidates: 2, groups: 3, stats: 1, values: odd)
        let m = try codec.decode(codec.encode(.result(WorkReply(request: 1, shard: 0, attempt: 0, result: .scores(s))))).message
        guard case let .result(r) = m, case let .scores(back) = r.result else { return XCTFail("not a scores result") }
        XCTAssertEqual(back.values.map(\.bitPattern), odd.map(\.bitPattern))
    }

    func testHeaderCarriesTheVersion() throws {
        XCTAssertEqual(try codec.encode(.heartbeat, version: 1)[0], Data([0x07, 1]))
        XCTAssertEqual(try MessageCodec(versions: [1, 2]).decode(codec.encode(.heartbeat, version: 2)).version, 2)
    }

    // MARK: typed errors

    func XCTAssertProtocolError(_ frames: [Data], _ expected: ProtocolError? = nil, codec c: MessageCodec? = nil,
                                file: StaticString = #filePath, line: UInt = #line) {
        do {
            let e = try (c ?? codec).decode(frames)
            XCTFail("decoded \(e.message.type.name), expected an error", file: file, line: line)
        } catch let e as ProtocolError {
            if let expected { XCTAssertEqual(e, expected, file: file, line: line) }
            XCTAssertTrue(e.description.hasPrefix("protocol: "), file: file, line: line)
        } catch { XCTFail("not a ProtocolError: \(error)", file: file, line: line) }
    }

    func body(_ json: String) -> Data { Data(json.utf8) }

    func testFrameCount() {
        XCTAssertProtocolError([], .frameCount(got: 0, expected: "2...4"))
        XCTAssertProtocolError([Data([7, v])], .frameCount(got: 1, expected: "2...4"))
        XCTAssertProtocolError([Data([7, v]), body("{}"), Data()], .frameCount(got: 3, expected: "2"))
        XCTAssertProtocolError([Data([6, v]), body("{}")], .frameCount(got: 2, expected: "3"))
    }
    func testHeader() {
        XCTAssertProtocolError([Data([7]), body("{}")], .headerLength(1))
        XCTAssertProtocolError([Data([7, 1, 0]), body("{}")], .headerLength(3))
        XCTAssertProtocolError([Data([0x42, v]), body("{}")], .unknownType(0x42))
        XCTAssertProtocolError([Data([0, v]), body("{}")], .unknownType(0))
    }
    func testVersion() throws {
        XCTAssertEqual(ProtocolVersion.current, 3)
        XCTAssertEqual(ProtocolVersion.supported, [2, 3])
        XCTAssertEqual(ProtocolVersion.reconstruction, [3])
        // Version 1 (BYE without a kind) is no longer spoken.
        XCTAssertProtocolError([Data([7, 1]), body("{}")], .unsupportedVersion(1, supported: [2, 3]))
        XCTAssertProtocolError([Data([7, 4]), body("{}")], .unsupportedVersion(4, supported: [2, 3]))
        XCTAssertProtocolError([Data([1, 0]), body("{\"versions\":[1],\"name\":\"w\"}")], .unsupportedVersion(0, supported: [2, 3]))
        // HELLO from a newer worker still decodes: its body is frozen, negotiation decides.
        XCTAssertNoThrow(try codec.decode([Data([1, 9]), body("{\"versions\":[9,1],\"name\":\"w\"}")]))
        // So does an ERROR at any version (its body is frozen too: a peer reads why it is refused).
        let refusal = try codec.decode([Data([8, 9]), body("{\"code\":\"version\",\"message\":\"coordinator speaks [9]\"}")])
        XCTAssertEqual(refusal, Envelope(version: 9, message: .error(code: .version, message: "coordinator speaks [9]")))
        XCTAssertProtocolError([Data([8, 0]), body("{\"code\":\"version\",\"message\":\"x\"}")], .unsupportedVersion(0, supported: [2, 3]))
    }
    func testOversizeFrame() {
        var limits = MessageLimits()
        limits.maxBody = 8
        XCTAssertProtocolError([Data([9, v]), body("{\"reason\":\"long\"}")], .oversizeFrame(index: 1, bytes: 17, limit: 8), codec: MessageCodec(limits: limits))
    }
    func testUndecodableBodies() {
        for b in ["", "[]", "{", "{\"shard\":1}", "{\"shard\":\"a\",\"attempt\":0}", "{\"shard\":1e400,\"attempt\":0}", "nul"] {
            XCTAssertProtocolError([Data([3, v]), body(b)])
        }
    }
    func testShardOutOfRange() {
        XCTAssertProtocolError([Data([4, v]), body("{\"shard\":4,\"attempt\":0}")], .shardOutOfRange(shard: 4, count: 4))
        XCTAssertProtocolError([Data([4, v]), body("{\"shard\":-1,\"attempt\":0}")], .shardOutOfRange(shard: -1, count: 4))
        XCTAssertProtocolError([Data([4, v]), body("{\"shard\":0,\"attempt\":-1}")])
    }
    func testResultBinaryLengthMustMatchShape() {
        let b = body("{\"request\":1,\"shard\":0,\"attempt\":0,\"kind\":\"scores\",\"candidates\":2,\"groups\":2,\"stats\":1}")
        XCTAssertProtocolError([Data([6, v]), b, Data(count: 31)], .binaryLength(expected: 32, got: 31))
        let r = body("{\"request\":1,\"shard\":0,\"attempt\":0,\"kind\":\"ranges\"}")
        XCTAssertProtocolError([Data([6, v]), r, Data()], .invalidField(type: "RESULT", field: "count", detail: "missing for a ranges result"))
        let huge = body("{\"request\":1,\"shard\":0,\"attempt\":0,\"kind\":\"scores\",\"candidates\":65536,\"groups\":1048576,\"stats\":16}")
        XCTAssertProtocolError([Data([6, v]), huge, Data()])
    }
    func testAMemoryReportOutOfRangeOrHalfMissingIsRefused() {
        let one = Data([0, 0, 0x80, 0x3f])   // 1.0 as a little-endian float
        for (fields, field) in [("\"peakRSS\":-1,\"spilled\":0", "peakRSS"), ("\"peakRSS\":0,\"spilled\":1125899906842625", "spilled"),
                                ("\"peakRSS\":5", "spilled"), ("\"spilled\":5", "peakRSS")] {
            let b = body("{\"request\":1,\"shard\":0,\"attempt\":0,\"kind\":\"ranges\",\"count\":1,\(fields)}")
            XCTAssertThrowsError(try codec.decode([Data([6, v]), b, one]), fields) { error in
                guard case let ProtocolError.invalidField(type, f, _) = error else { return XCTFail("\(fields): \(error)") }
                XCTAssertEqual(type, "RESULT"); XCTAssertEqual(f, field, fields)
            }
        }
    }
    func testJobValidation() throws {
        var bad = Fx.job(shards: 2)
        bad.model = .path(path: "/m", sha256: "XYZ")
        XCTAssertProtocolError(try codec.encode(.job(bad, blobs: [])))
        var overlap = Fx.job(shards: 2)
        overlap.shards = [ShardRange(0..<8), ShardRange(4..<12)]
        XCTAssertProtocolError(try codec.encode(.job(overlap, blobs: [])))
        var missing = Fx.job(shards: 2)
        missing.model = .inline(frame: 2, sha256: Fx.sha)
        XCTAssertProtocolError(try codec.encode(.job(missing, blobs: [])))
        XCTAssertProtocolError(try codec.encode(.job(Fx.job(shards: 2), blobs: [Data([1])])))
        // A job carries its model's family and spec as text, bounded.
        var swin = Fx.job(shards: 2)
        swin.modelSpec = JobModelSpec(family: "swin", spec: "{\"swin\":{\"depths\":[2,2,6,2]}}")
        try roundTrip(.job(swin, blobs: []))
        swin.modelSpec.spec = String(repeating: "x", count: 20000)
        XCTAssertProtocolError(try codec.encode(.job(swin, blobs: [])))
        // Smoothing ranges: per op, k minima then k maxima, finite, each minimum at most its maximum.
        var smooth = Fx.job(shards: 2)
        smooth.smoothingRanges = ["blocks.0.attn.qkv": [-2, 0.5, 3, 0.5]]
        try roundTrip(.job(smooth, blobs: []))
        for bad: [Float] in [[-2, 0.5, 3], [4, 0, 3, 1], [-2, .nan, 3, 1], []] {
            smooth.smoothingRanges = ["blocks.0.attn.qkv": bad]
            XCTAssertProtocolError(try codec.encode(.job(smooth, blobs: [])))
        }
    }
    func testTaskValidation() throws {
        XCTAssertProtocolError(try codec.encode(.task(WorkTask(request: 1, shard: 0, attempt: 0, unit: .ranges(op: "")))))
        XCTAssertProtocolError(try codec.encode(.task(WorkTask(request: 1, shard: 0, attempt: 0, unit: .ranges(op: String(repeating: "x", count: 300))))))
        var t = Fx.searchTask()
        t.groups = 0
        XCTAssertProtocolError(try codec.encode(.task(WorkTask(request: 1, shard: 0, attempt: 0, unit: .score(t)))))
        XCTAssertProtocolError([Data([5, v]), body("{\"request\":1,\"shard\":0,\"attempt\":0,\"unit\":{\"ranges\":{\"op\":\"a\"},\"score\":{}}}")])
    }
    func testByeCarriesATypedKind() throws {
        let finished = try codec.decode([Data([9, v]), body("{\"kind\":\"runFinished\",\"reason\":\"x\"}")])
        XCTAssertEqual(finished.message, .bye(.runFinished, reason: "x"))
        XCTAssertEqual(try codec.decode([Data([9, v]), body("{\"kind\":\"leaving\",\"reason\":\"\"}")]).message, .bye(.leaving, reason: ""))
        // Version 1's BYE (the reason string alone) and an unknown kind do not decode.
        XCTAssertProtocolError([Data([9, v]), body("{\"reason\":\"run finished\"}")])
        XCTAssertProtocolError([Data([9, v]), body("{\"kind\":\"done\",\"reason\":\"run finished\"}")])
        XCTAssertEqual(String(decoding: try codec.encode(.bye(.runFinished, reason: "run finished"))[1], as: UTF8.self),
                       "{\"kind\":\"runFinished\",\"reason\":\"run finished\"}")
    }
    func testHelloValidation() {
        XCTAssertProtocolError([Data([1, v]), body("{\"versions\":[],\"name\":\"w\"}")])
        XCTAssertProtocolError([Data([1, v]), body("{\"versions\":[1,1],\"name\":\"w\"}")])
        XCTAssertProtocolError([Data([1, v]), body("{\"versions\":[256],\"name\":\"w\"}")])
    }
    func testEncodeRefusesOversize() {
        var limits = MessageLimits()
        limits.maxBody = 10
        XCTAssertThrowsError(try MessageCodec(limits: limits).encode(.bye(.leaving, reason: "a long reason"))) { XCTAssertTrue($0 is ProtocolError) }
    }
}
