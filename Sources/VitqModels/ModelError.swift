/// A model that cannot be built from the given file and config. Each case names the key.
public enum ModelError: Error, CustomStringConvertible, Equatable {
    case missingKey(path: String, key: String)
    case unexpectedKey(path: String, key: String)
    case wrongShape(path: String, key: String, expected: [Int], actual: [Int])
    case badConfig(source: String, key: String, detail: String)
    case unknownArchitecture(path: String, detail: String)
    /// A stored spec (a quantized file's `model` metadata, a JOB's) that does not decode as `family`'s.
    case invalidSpec(source: String, family: String, detail: String)

    public var description: String {
        switch self {
        case let .missingKey(p, k): return "\(p): missing tensor '\(k)'"
        case let .unexpectedKey(p, k): return "\(p): unexpected tensor '\(k)' (not part of the architecture)"
        case let .wrongShape(p, k, e, a): return "\(p): tensor '\(k)' has shape \(a), expected \(e)"
        case let .badConfig(s, k, d): return "\(s): config key '\(k)': \(d)"
        case let .unknownArchitecture(p, d): return "\(p): \(d)"
        case let .invalidSpec(s, f, d): return "\(s) is not a valid \(f) spec: \(d)"
        }
    }
}
