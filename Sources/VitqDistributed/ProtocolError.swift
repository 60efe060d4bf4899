/// Why a set of frames is not a valid protocol message (Docs/PROTOCOL.md). Decoding never
/// traps on bad input: every problem becomes one of these, naming what was wrong.
public enum ProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The message has `got` frames; its type needs `expected` (e.g. "2", "3", "2...4").
    case frameCount(got: Int, expected: String)
    /// The header frame is not exactly 2 bytes.
    case headerLength(Int)
    /// The type byte names no message type.
    case unknownType(UInt8)
    /// The header's version is not one this side speaks.
    case unsupportedVersion(UInt8, supported: [UInt8])
    /// Frame `index` is `bytes` long, over its `limit`.
    case oversizeFrame(index: Int, bytes: Int, limit: Int)
    /// The body frame is not the JSON object the type requires.
    case undecodableBody(type: String, detail: String)
    /// A field decoded but is out of its allowed range or shape.
    case invalidField(type: String, field: String, detail: String)
    /// A shard index outside `0..<count`.
    case shardOutOfRange(shard: Int, count: Int)
    /// A binary frame's length does not match the shape the body declares.
    case binaryLength(expected: Int, got: Int)
    /// A message could not be encoded (it would break a limit, or JSON refused a value).
    case unencodable(type: String, detail: String)

    public var description: String {
        switch self {
        case let .frameCount(got, expected): return "protocol: \(got) frames, expected \(expected)"
        case let .headerLength(n): return "protocol: header frame of \(n) bytes, expected 2 (type, version)"
        case let .unknownType(t): return "protocol: unknown message type byte 0x\(String(t, radix: 16))"
        case let .unsupportedVersion(v, s): return "protocol: version \(v) not supported (this side speaks \(s))"
        case let .oversizeFrame(i, b, l): return "protocol: frame \(i) is \(b) bytes, over the limit of \(l)"
        case let .undecodableBody(t, d): return "protocol: \(t) body does not decode: \(d)"
        case let .invalidField(t, f, d): return "protocol: \(t) field '\(f)': \(d)"
        case let .shardOutOfRange(s, c): return "protocol: shard index \(s) out of range 0..<\(c)"
        case let .binaryLength(e, g): return "protocol: binary frame of \(g) bytes, the declared shape needs \(e)"
        case let .unencodable(t, d): return "protocol: cannot encode \(t): \(d)"
        }
    }
}
