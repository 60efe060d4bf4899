import VitqFormats
import VitqTensor

/// Reads the tensors of one model file strictly: every key must be asked for exactly once with
/// its expected shape, every float tensor must be finite (a NaN or infinite weight, norm or
/// position embedding is refused naming the tensor), and ``finish()`` fails on any key left over.
public final class StrictTensorLoader {
    public let file: TensorFile
    private var used: Set<String> = []

    public init(_ file: TensorFile) { self.file = file }

    /// Tensor `key`, which must have `shape` and only finite values.
    public func load(_ key: String, _ shape: [Int]) throws -> Tensor {
        guard let info = file.tensors[key] else { throw ModelError.missingKey(path: file.path, key: key) }
        guard info.shape == shape else { throw ModelError.wrongShape(path: file.path, key: key, expected: shape, actual: info.shape) }
        used.insert(key)
        let t = try file.floatTensor(key)
        if let bad = Self.firstNonFinite(t) {
            throw FormatError.badTensor(path: file.path, key: key, detail: "value \(t.data[bad]) at flat index \(bad) is not finite")
        }
        return t
    }

    /// The flat index of the first NaN or infinite value of `t`, if any.
    static func firstNonFinite(_ t: Tensor) -> Int? {
        let p = t.data
        for i in 0..<t.count where !p[i].isFinite { return i }
        return nil
    }

    /// Int8 tensor `key`, which must have dtype I8 and `shape`.
    public func loadInt8(_ key: String, _ shape: [Int]) throws -> [Int8] {
        guard let info = file.tensors[key] else { throw ModelError.missingKey(path: file.path, key: key) }
        guard info.shape == shape else { throw ModelError.wrongShape(path: file.path, key: key, expected: shape, actual: info.shape) }
        guard info.dtype == .i8 else { throw FormatError.unsupportedDtype(path: file.path, key: key, dtype: info.dtype.rawValue + " (expected I8)") }
        used.insert(key)
        return Array(try file.rawBytes(key).bindMemory(to: Int8.self))
    }

    /// Records `key` as read by the caller (who validates its shape and dtype itself).
    public func markUsed(_ key: String) { used.insert(key) }

    /// Whether the file has tensor `key`.
    public func has(_ key: String) -> Bool { file.tensors[key] != nil }

    /// Tensor `key` if present (with `shape`), else nil.
    public func loadIfPresent(_ key: String, _ shape: [Int]) throws -> Tensor? {
        file.tensors[key] == nil ? nil : try load(key, shape)
    }

    /// Fails on the first (sorted) key that was never loaded.
    public func finish() throws {
        if let extra = file.names.first(where: { !used.contains($0) }) {
            throw ModelError.unexpectedKey(path: file.path, key: extra)
        }
    }
}
