import Foundation
import VitqTensor

/// Builds a safetensors file in memory and writes it atomically (temp file, fsync, rename).
///
/// The header lists tensors in name order and `__metadata__` keys sorted, so the same
/// content always gives the same bytes.
public struct SafeTensorsWriter {
    private var entries: [(name: String, dtype: DType, shape: [Int], bytes: Data)] = []
    /// String metadata stored under `__metadata__`.
    public var metadata: [String: String] = [:]

    public init() {}

    /// Adds a tensor with raw little-endian bytes; `bytes.count` must equal shape × dtype size.
    public mutating func add(_ name: String, dtype: DType, shape: [Int], bytes: Data) {
        precondition(shape.reduce(1, *) * dtype.size == bytes.count, "\(name): \(bytes.count) bytes for \(shape) \(dtype)")
        precondition(!entries.contains { $0.name == name }, "duplicate tensor \(name)")
        entries.append((name, dtype, shape, bytes))
    }

    /// Adds an F32 tensor.
    public mutating func add(_ name: String, _ t: Tensor) {
        add(name, dtype: .f32, shape: t.shape, bytes: Data(bytes: t.data, count: t.count * 4))
    }

    /// Adds an F32 tensor from an array.
    public mutating func add(_ name: String, shape: [Int], floats: [Float]) {
        add(name, dtype: .f32, shape: shape, bytes: floats.withUnsafeBufferPointer { Data(buffer: $0) })
    }

    /// The complete file bytes.
    public func serialized() -> Data {
        let sorted = entries.sorted { $0.name < $1.name }
        var parts: [String] = []
        if !metadata.isEmpty {
            let kv = metadata.keys.sorted().map { "\(JSONText.quote($0)):\(JSONText.quote(metadata[$0]!))" }
            parts.append("\"__metadata__\":{\(kv.joined(separator: ","))}")
        }
        var offset = 0
        for e in sorted {
            let shape = e.shape.map(String.init).joined(separator: ",")
            parts.append("\(JSONText.quote(e.name)):{\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + e.bytes.count)]}")
            offset += e.bytes.count
        }
        var header = Data(("{" + parts.joined(separator: ",") + "}").utf8)
        while (8 + header.count) % 8 != 0 { header.append(0x20) }
        var out = Data(capacity: 8 + header.count + offset)
        withUnsafeBytes(of: UInt64(header.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(header)
        for e in sorted { out.append(e.bytes) }
        return out
    }

    /// Writes the file to `path` atomically.
    public func write(to path: String) throws {
        try AtomicFile.write(serialized(), to: path)
    }
}

/// Minimal JSON text helpers for deterministic output.
public enum JSONText {
    /// `s` as a JSON string literal.
    public static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }
}
