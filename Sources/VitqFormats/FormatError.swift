/// A problem with a file vitq reads or writes. Each case names the file (and key) so that the
/// CLI can print it as one line.
public enum FormatError: Error, CustomStringConvertible, Equatable {
    /// The file could not be opened, mapped or written.
    case io(path: String, message: String)
    /// The file ends before the data it announces.
    case truncated(path: String, detail: String)
    /// The header (safetensors JSON, .npy dict) is malformed.
    case badHeader(path: String, detail: String)
    /// A tensor entry is inconsistent (shape × dtype ≠ byte length, range, overlap).
    case badTensor(path: String, key: String, detail: String)
    /// A dtype this reader does not support.
    case unsupportedDtype(path: String, key: String, dtype: String)
    /// A tensor that was asked for is not in the file.
    case missingKey(path: String, key: String)
    /// A checkpoint container (a torch.save zip, its pickle) holds something vitq refuses:
    /// `object` names the entry or pickled object.
    case badCheckpoint(path: String, object: String, detail: String)

    public var description: String {
        switch self {
        case let .io(p, m): return "\(p): \(m)"
        case let .truncated(p, d): return "\(p): truncated file: \(d)"
        case let .badHeader(p, d): return "\(p): bad header: \(d)"
        case let .badTensor(p, k, d): return "\(p): tensor '\(k)': \(d)"
        case let .unsupportedDtype(p, k, d): return "\(p): tensor '\(k)': unsupported dtype '\(d)'"
        case let .missingKey(p, k): return "\(p): missing tensor '\(k)'"
        case let .badCheckpoint(p, o, d): return "\(p): \(o): \(d)"
        }
    }
}
