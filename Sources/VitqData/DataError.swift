/// A problem with input images or labels. Each case names the file.
public enum DataError: Error, CustomStringConvertible, Equatable {
    case unreadableImage(path: String, detail: String)
    case badDataset(path: String, detail: String)
    case badClassIndex(path: String, detail: String)

    public var description: String {
        switch self {
        case let .unreadableImage(p, d): return "\(p): unreadable image: \(d)"
        case let .badDataset(p, d): return "\(p): \(d)"
        case let .badClassIndex(p, d): return "\(p): bad class index: \(d)"
        }
    }
}
