import Foundation
import VitqDistributed
import XCTest

/// Seeded random and mutated frame sets: the decoder never traps, and random garbage is
/// always a ``ProtocolError``.
final class FrameFuzzTests: XCTestCase {
    /// SplitMix64: a small deterministic generator for reproducible fuzzing.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    let codec = MessageCodec(shardCount: 4)

    func bytes(_ n: Int, _ g: inout SplitMix) -> Data { Data((0..<n).map { _ in UInt8.random(in: 0...255, using: &g) }) }

    func testThousandRandomFrameSetsAreProtocolErrors() {
        var g = SplitMix(state: 1)
        for i in 0..<1000 {
            let frames = (0..<Int.random(in: 0...5, using: &g)).map { f -> Data in
                // A plausible header half of the time, so decoding gets past frame 0.
                f == 0 && i % 2 == 0 ? Data([UInt8.random(in: 0...10, using: &g), ProtocolVersion.current]) : bytes(Int.random(in: 0...64, using: &g), &g)
            }
            XCTAssertThrowsError(try codec.decode(frames), "set \(i)") { XCTAssertTrue($0 is ProtocolError, "set \(i): \($0)") }
        }
    }

    /// Whether the decoded `envelope` encodes again, to frames that decode and encode to the
    /// same bytes (what the decoder accepts, the encoder can write back, losslessly).
    func reencodesStably(_ envelope: Envelope) -> Bool {
        guard let once = try? codec.encode(envelope.message, version: envelope.version),
              let back = try? codec.decode(once), let twice = try? codec.encode(back.message, version: back.version) else { return false }
        return once == twice && back.version == envelope.version
    }

    /// A million seeded inputs (the fuzzing bar): valid messages with flipped, inserted
    /// and cut bytes, dropped or added frames, and one in four pure garbage. Each decodes or
    /// throws a ProtocolError; nothing traps; every message that decodes re-encodes stably.
    func testAMillionSeededInputsNeverTrap() throws {
        let seeds: [Message] = [
            .hello(Hello(name: "w")), .job(Fx.job(shards: 3), blobs: []), .assign(shard: 1, attempt: 0), .ready(shard: 2, attempt: 1),
            .task(WorkTask(request: 1, shard: 0, attempt: 0, unit: .score(Fx.searchTask()))),
            .result(WorkReply(request: 1, shard: 3, attempt: 0, result: .scores(Fx.scores(Fx.searchTask(), shard: 0)))),
            .result(WorkReply(request: 1, shard: 3, attempt: 0, result: .ranges([1, 2]))),
            .heartbeat, .error(code: .failed, message: "x"), .bye(.leaving, reason: "y"),
        ]
        let valid = try seeds.map { try codec.encode($0) }
        var g = SplitMix(state: 2)
        var decoded = 0, rejected = 0
        var unstable: [Int] = []
        func check(_ frames: [Data], input i: Int) throws {
            let envelope: Envelope
            do { envelope = try codec.decode(frames) } catch is ProtocolError { rejected += 1; return }
            decoded += 1
            if !reencodesStably(envelope) { unstable.append(i) }
        }
        let total = 1_000_000
        for i in 0..<total {
            if i % 4 == 3 {
                try check((0..<Int.random(in: 0...5, using: &g)).map { _ in bytes(Int.random(in: 0...48, using: &g), &g) }, input: i)
                continue
            }
            var frames = valid.randomElement(using: &g)!
            for _ in 0..<Int.random(in: 1...3, using: &g) {
                let f = Int.random(in: 0..<frames.count, using: &g)
                var d = [UInt8](frames[f])
                switch Int.random(in: 0..<6, using: &g) {
                case 0 where !d.isEmpty: d[Int.random(in: 0..<d.count, using: &g)] = UInt8.random(in: 0...255, using: &g)
                case 1: d.insert(UInt8.random(in: 0...255, using: &g), at: Int.random(in: 0...d.count, using: &g))
                case 2 where !d.isEmpty: d.removeSubrange(Int.random(in: 0..<d.count, using: &g)...)
                case 3: frames.append(Data(d)); continue
                case 4 where frames.count > 1: frames.remove(at: f); continue
                default: d = Array(String(decoding: d, as: UTF8.self).replacingOccurrences(of: "1", with: "-1").utf8)
                }
                frames[f] = Data(d)
            }
            try check(frames, input: i)
        }
        XCTAssertEqual(unstable.count, 0, "decoded inputs that do not re-encode stably, the first: \(unstable.prefix(5))")
        XCTAssertGreaterThan(rejected, total / 2)
        XCTAssertGreaterThan(decoded, 1000, "mutations that keep a message valid are decoded, not rejected wholesale")
    }
}
