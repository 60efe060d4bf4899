import Foundation
import VitqQuant

/// Messages to and from ZeroMQ frames (Docs/PROTOCOL.md §1–2). Decoding checks everything —
/// frame count, header, type, version, sizes, JSON shape, field ranges, shard indices and
/// binary lengths — and throws a ``ProtocolError``; it never traps, whatever the bytes.
public struct MessageCodec: Sendable {
    public var limits: MessageLimits
    /// The job's shard count, once known: shard indices are checked against it.
    public var shardCount: Int?
    /// The versions this side accepts in headers (HELLO and ERROR excepted: their bodies are
    /// frozen, so a peer can always say hello and read why it is refused).
    public var versions: [UInt8]

    public init(limits: MessageLimits = .default, shardCount: Int? = nil, versions: [UInt8] = ProtocolVersion.supported) {
        self.limits = limits; self.shardCount = shardCount; self.versions = versions
    }

    // MARK: encode

    /// The frames of `message` with `version` in its header.
    public func encode(_ message: Message, version: UInt8 = ProtocolVersion.current) throws -> [Data] {
        let type = message.type
        var frames = [Data([type.rawValue, version])]
        switch message {
        case let .hello(h): frames.append(try json(h, type))
        case let .job(job, blobs): frames.append(try json(Body.Job(job: job), type)); frames += blobs
        case let .assign(s, a), let .ready(s, a): frames.append(try json(Body.ShardAttempt(shard: s, attempt: a), type))
        case let .task(t): frames.append(try json(Body.Task(request: t.request, shard: t.shard, attempt: t.attempt, unit: t.unit), type))
        case let .result(r):
            var body = Body.Result(request: r.request, shard: r.shard, attempt: r.attempt, kind: .ranges,
                                   peakRSS: r.memory?.peakResidentBytes, spilled: r.memory?.bytesSpilled)
            let values: Data
            switch r.result {
            case let .ranges(v): body.count = v.count; values = BinaryValues.encode(v)
            case let .scores(s):
                body.kind = .scores; body.candidates = s.candidates; body.groups = s.groups; body.stats = s.stats
                values = BinaryValues.encode(s.values)
            case let .outputError(e):
                body.kind = .outputError; body.channels = e.sums.count; body.rows = e.rows
                values = BinaryValues.encode([e.inputAbsSum, e.squaredError, e.squaredReference] + e.sums)
            case let .counts(c):
                body.kind = .counts; body.count = c.count
                values = BinaryValues.encode(c)
            case let .reconstruction(o):
                guard o.units.count == 1 else { throw ProtocolError.unencodable(type: type.name, detail: "a reconstruction result has one unit, not \(o.units.count)") }
                body.kind = .reconstruction
                let ops = o.integers.keys.sorted()
                body.reconstruction = Body.Reconstruction(
                    stats: o.units[0], integers: ops.map { .init(op: $0, count: o.integers[$0]!.count) },
                    inputs: o.inputs.keys.sorted().map { .init(op: $0, quantizer: o.inputs[$0]!) },
                    attention: o.attention.keys.sorted().map { .init(block: $0, learned: o.attention[$0]!) })
                values = BinaryValues.encode(int8: ops.flatMap { o.integers[$0]! })
            }
            frames += [try json(body, type), values]
        case .heartbeat: frames.append(try json(Body.Empty(), type))
        case let .error(code, text): frames.append(try json(Body.Error(code: code, message: text), type))
        case let .bye(kind, reason): frames.append(try json(Body.Bye(kind: kind, reason: reason), type))
        }
        for (i, f) in frames.enumerated() where f.count > limit(frame: i, type) {
            throw ProtocolError.unencodable(type: type.name, detail: "frame \(i) of \(f.count) bytes is over the limit")
        }
        return frames
    }

    private func json<T: Encodable>(_ value: T, _ type: MessageType) throws -> Data {
        do { return try ProtocolJSON.encoder().encode(value) } catch { throw ProtocolError.unencodable(type: type.name, detail: "\(error)") }
    }

    // MARK: decode

    /// The message in `frames`, validated.
    public func decode(_ frames: [Data]) throws -> Envelope {
        guard frames.count >= 2, frames.count <= 4 else { throw ProtocolError.frameCount(got: frames.count, expected: "2...4") }
        let header = frames[0]
        guard header.count == 2 else { throw ProtocolError.headerLength(header.count) }
        let bytes = [UInt8](header)
        guard let type = MessageType(rawValue: bytes[0]) else { throw ProtocolError.unknownType(bytes[0]) }
        let version = bytes[1]
        if type == .hello || type == .error ? version == 0 : !versions.contains(version) {
            throw ProtocolError.unsupportedVersion(version, supported: versions)
        }
        for (i, f) in frames.enumerated() where f.count > limit(frame: i, type) {
            throw ProtocolError.oversizeFrame(index: i, bytes: f.count, limit: limit(frame: i, type))
        }
        let expected: ClosedRange<Int> = type == .job ? 2...4 : type == .result ? 3...3 : 2...2
        guard expected.contains(frames.count) else {
            throw ProtocolError.frameCount(got: frames.count, expected: expected.count == 1 ? "\(expected.lowerBound)" : "\(expected)")
        }
        let v = MessageValidator(limits: limits, shardCount: shardCount, type: type)
        return Envelope(version: version, message: try message(type, frames, v))
    }

    private func message(_ type: MessageType, _ frames: [Data], _ v: MessageValidator) throws -> Message {
        let body = frames[1]
        switch type {
        case .hello:
            let h = try v.body(Hello.self, body)
            try v.hello(h)
            return .hello(h)
        case .job:
            let j = try v.body(Body.Job.self, body).job
            try v.job(j, frames: frames.count)
            return .job(j, blobs: Array(frames[2...]))
        case .assign, .ready:
            let b = try v.body(Body.ShardAttempt.self, body)
            try v.shard(b.shard, attempt: b.attempt)
            return type == .assign ? .assign(shard: b.shard, attempt: b.attempt) : .ready(shard: b.shard, attempt: b.attempt)
        case .task:
            let b = try v.body(Body.Task.self, body)
            try v.shard(b.shard, attempt: b.attempt)
            try v.unit(b.unit)
            return .task(WorkTask(request: b.request, shard: b.shard, attempt: b.attempt, unit: b.unit))
        case .result:
            let b = try v.body(Body.Result.self, body)
            try v.shard(b.shard, attempt: b.attempt)
            return .result(WorkReply(request: b.request, shard: b.shard, attempt: b.attempt, result: try v.result(b, frames[2]),
                                     memory: try v.memory(b)))
        case .heartbeat:
            _ = try v.body(Body.Empty.self, body)
            return .heartbeat
        case .error:
            let b = try v.body(Body.Error.self, body)
            try v.text(b.message, field: "message")
            return .error(code: b.code, message: b.message)
        case .bye:
            let b = try v.body(Body.Bye.self, body)
            try v.text(b.reason, field: "reason")
            return .bye(b.kind, reason: b.reason)
        }
    }

    /// The size limit of frame `i` of a `type` message.
    private func limit(frame i: Int, _ type: MessageType) -> Int {
        switch i {
        case 0: return 2
        case 1: return limits.maxBody
        default: return type == .result ? limits.maxValues * 8 + 24 : limits.maxBlob
        }
    }
}
