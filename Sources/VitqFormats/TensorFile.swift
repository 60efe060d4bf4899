import CVitqKernels
import Foundation
import VitqTensor

/// The element types a safetensors file may declare.
public enum DType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }
}

/// One tensor entry of a safetensors header.
public struct TensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Byte range inside the data section (after the header).
    public let range: Range<Int>
    public var count: Int { CheckedSize.product(shape) ?? 0 }
}

/// The kinds of checkpoint file a ``TensorFile`` is read from.
public enum CheckpointFormat: String, Sendable {
    /// A safetensors file (timm, Hugging Face, vitq's quantized files), memory-mapped.
    case safetensors
    /// A PyTorch `torch.save` zip of a state dict (`.pth`/`.pt`), read by the strict unpickler.
    case pytorch

    /// The name `vitq inspect` reports.
    public var displayName: String {
        switch self {
        case .safetensors: return "safetensors"
        case .pytorch: return "PyTorch state dict (torch.save zip)"
        }
    }
}

/// The named tensors of one checkpoint file, with every entry validated: a safetensors file
/// opened through a memory mapping (``init(path:)``), or tensors assembled in memory by another
/// reader (a PyTorch state dict, a checkpoint re-keyed to timm's names;
/// ``init(path:format:entries:metadata:)``). ``open(path:)`` picks the reader by the file's first bytes.
///
/// Safetensors validation: the 8-byte header length fits the file, the header is a JSON object, every
/// entry has a known dtype, non-negative shape and `data_offsets` inside the data section,
/// shape × dtype size equals the byte length, and no two ranges overlap.
public final class TensorFile: @unchecked Sendable {
    /// Header entries by name.
    public let tensors: [String: TensorInfo]
    /// The `__metadata__` string map (empty when absent).
    public let metadata: [String: String]
    /// The path the file was opened from.
    public let path: String
    /// The reader the tensors came from.
    public let format: CheckpointFormat
    /// The tensors' bytes (ranges of ``TensorInfo`` index it), valid while `owner` lives.
    private let data: UnsafeRawBufferPointer
    /// Keeps `data` alive: the mapping, or the buffer of an in-memory file.
    private let owner: AnyObject

    /// The size of the file the tensors were read from, in bytes (an upper bound on what any
    /// tensor in it can hold).
    public let byteCount: Int

    /// Tensor names, sorted.
    public var names: [String] { tensors.keys.sorted() }

    /// The checkpoint at `path`, read by the reader its first bytes name: a zip (`PK\u{3}\u{4}`)
    /// is a PyTorch state dict, anything else is read as safetensors.
    public static func open(path: String) throws -> TensorFile {
        // Mapped first: only a regular file is opened, and never blocking (a FIFO cannot hang the sniff).
        let mapped = try MappedFile(path: path)
        let isZip = withExtendedLifetime(mapped) { mapped.bytes.prefix(4).elementsEqual([0x50, 0x4B, 0x03, 0x04]) }
        if isZip { return try PyTorchCheckpoint.read(path: path) }
        return try TensorFile(path: path)
    }

    /// One tensor of an in-memory file: its little-endian bytes, which must match dtype × shape.
    public struct Entry {
        public var name: String, dtype: DType, shape: [Int], bytes: Data
        public init(name: String, dtype: DType, shape: [Int], bytes: Data) {
            self.name = name; self.dtype = dtype; self.shape = shape; self.bytes = bytes
        }
    }

    /// A file of `entries` held in memory, reported as read from `path` in `format` (whose size,
    /// `byteCount`, bounds the sizes checked against it). Names must be unique and each entry's bytes
    /// must be exactly dtype × shape.
    public init(path: String, format: CheckpointFormat, byteCount: Int, entries: [Entry], metadata: [String: String] = [:]) throws {
        var infos: [String: TensorInfo] = [:]
        var offset = 0
        for e in entries {
            guard infos[e.name] == nil else { throw FormatError.badTensor(path: path, key: e.name, detail: "appears twice") }
            guard let n = CheckedSize.product(e.shape + [e.dtype.size]), n == e.bytes.count else {
                throw FormatError.badTensor(path: path, key: e.name, detail: "shape \(e.shape) × \(e.dtype.rawValue) does not match its \(e.bytes.count) bytes")
            }
            infos[e.name] = TensorInfo(name: e.name, dtype: e.dtype, shape: e.shape, range: offset..<(offset + n))
            offset += n
        }
        let buffer = AlignedBytes(count: offset)
        for e in entries where !e.bytes.isEmpty {
            let to = UnsafeMutableRawPointer(mutating: buffer.bytes.baseAddress!) + infos[e.name]!.range.lowerBound
            e.bytes.withUnsafeBytes { to.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        }
        self.path = path; self.format = format; self.byteCount = byteCount
        tensors = infos; self.metadata = metadata; data = buffer.bytes; owner = buffer
    }

    /// Opens and validates `path`.
    public init(path: String) throws {
        let file = try MappedFile(path: path)
        let size = file.bytes.count
        guard size >= 8 else { throw FormatError.truncated(path: path, detail: "\(size) bytes, need at least 8 for the header length") }
        let headerLen = file.readLE(UInt64.self, at: 0)
        guard headerLen <= UInt64(size - 8) else {
            throw FormatError.truncated(path: path, detail: "header length \(headerLen) exceeds the \(size - 8) bytes after it")
        }
        guard headerLen <= 100_000_000 else { throw FormatError.badHeader(path: path, detail: "header length \(headerLen) is implausibly large") }
        let dataStart = 8 + Int(headerLen)
        let dataSize = size - dataStart
        let headerBytes = Data(file.bytes[8..<dataStart])
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: headerBytes) } catch {
            throw FormatError.badHeader(path: path, detail: "header is not valid JSON")
        }
        guard let root = json as? [String: Any] else { throw FormatError.badHeader(path: path, detail: "header is not a JSON object") }
        var meta: [String: String] = [:]
        var infos: [String: TensorInfo] = [:]
        for (key, value) in root {
            if key == "__metadata__" {
                guard let m = value as? [String: Any] else { throw FormatError.badHeader(path: path, detail: "__metadata__ is not an object") }
                for (mk, mv) in m {
                    guard let s = mv as? String else { throw FormatError.badHeader(path: path, detail: "__metadata__.\(mk) is not a string") }
                    meta[mk] = s
                }
                continue
            }
            guard let entry = value as? [String: Any] else { throw FormatError.badTensor(path: path, key: key, detail: "entry is not an object") }
            guard let ds = entry["dtype"] as? String else { throw FormatError.badTensor(path: path, key: key, detail: "missing dtype") }
            guard let dtype = DType(rawValue: ds) else { throw FormatError.unsupportedDtype(path: path, key: key, dtype: ds) }
            guard let shapeAny = entry["shape"] as? [Any], let shape = Self.integers(shapeAny), shape.allSatisfy({ $0 >= 0 }) else {
                throw FormatError.badTensor(path: path, key: key, detail: "shape is not a list of non-negative integers")
            }
            guard let offAny = entry["data_offsets"] as? [Any], let offs = Self.integers(offAny), offs.count == 2 else {
                throw FormatError.badTensor(path: path, key: key, detail: "data_offsets is not [begin, end]")
            }
            let (begin, end) = (offs[0], offs[1])
            guard begin >= 0, begin <= end else { throw FormatError.badTensor(path: path, key: key, detail: "data_offsets [\(begin), \(end)] are not ordered") }
            guard end <= dataSize else {
                throw FormatError.badTensor(path: path, key: key, detail: "data_offsets end \(end) is beyond the \(dataSize)-byte data section")
            }
            guard let bytes = CheckedSize.product(shape + [dtype.size]) else {
                throw FormatError.badTensor(path: path, key: key, detail: "shape \(shape) × \(dtype.rawValue) overflows a 64-bit byte count")
            }
            guard bytes == end - begin else {
                throw FormatError.badTensor(path: path, key: key, detail: "shape \(shape) × \(dtype.rawValue) needs \(bytes) bytes, data_offsets give \(end - begin)")
            }
            infos[key] = TensorInfo(name: key, dtype: dtype, shape: shape, range: begin..<end)
        }
        let sorted = infos.values.filter { !$0.range.isEmpty }.sorted { $0.range.lowerBound < $1.range.lowerBound }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.range.lowerBound < a.range.upperBound {
            throw FormatError.badTensor(path: path, key: b.name, detail: "byte range overlaps tensor '\(a.name)'")
        }
        tensors = infos
        metadata = meta
        self.path = path; format = .safetensors; byteCount = size
        data = UnsafeRawBufferPointer(rebasing: file.bytes[dataStart...]); owner = file
    }

    private static func integers(_ a: [Any]) -> [Int]? {
        var out: [Int] = []
        for v in a {
            guard let i = v as? Int else { return nil }
            out.append(i)
        }
        return out
    }

    /// The header entry for `name`, or a `missingKey` error.
    public func info(_ name: String) throws -> TensorInfo {
        guard let i = tensors[name] else { throw FormatError.missingKey(path: path, key: name) }
        return i
    }

    /// The raw bytes of tensor `name`, valid while this object lives.
    public func rawBytes(_ name: String) throws -> UnsafeRawBufferPointer {
        let i = try info(name)
        return UnsafeRawBufferPointer(rebasing: data[i.range])
    }

    /// Tensor `name` converted to F32 (from F32, F16, BF16 or F64).
    public func floatTensor(_ name: String) throws -> Tensor {
        let i = try info(name)
        let raw = try rawBytes(name)
        let t = Tensor(zeros: i.shape)
        switch i.dtype {
        case .f32:
            if i.count > 0 { UnsafeMutableRawPointer(t.data).copyMemory(from: raw.baseAddress!, byteCount: i.count * 4) }
        case .f16, .bf16:
            let tmp = UnsafeMutablePointer<UInt16>.allocate(capacity: max(1, i.count))
            defer { tmp.deallocate() }
            if i.count > 0 { UnsafeMutableRawPointer(tmp).copyMemory(from: raw.baseAddress!, byteCount: i.count * 2) }
            if i.dtype == .f16 { vitq_f16_to_f32(tmp, t.data, Int64(i.count)) } else { vitq_bf16_to_f32(tmp, t.data, Int64(i.count)) }
        case .f64:
            for j in 0..<i.count { t.data[j] = Float(raw.loadUnaligned(fromByteOffset: j * 8, as: Double.self)) }
        default:
            throw FormatError.unsupportedDtype(path: path, key: name, dtype: i.dtype.rawValue + " (expected F32, F16, BF16 or F64)")
        }
        return t
    }

    /// Tensor `name` as integers (from I64, I32, I16, I8 or U8).
    public func integers(_ name: String) throws -> [Int] {
        let i = try info(name)
        let raw = try rawBytes(name)
        switch i.dtype {
        case .i64: return (0..<i.count).map { Int(raw.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
        case .i32: return (0..<i.count).map { Int(raw.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
        case .i16: return (0..<i.count).map { Int(raw.loadUnaligned(fromByteOffset: $0 * 2, as: Int16.self)) }
        case .i8: return (0..<i.count).map { Int(raw.load(fromByteOffset: $0, as: Int8.self)) }
        case .u8: return (0..<i.count).map { Int(raw[$0]) }
        default: throw FormatError.unsupportedDtype(path: path, key: name, dtype: i.dtype.rawValue + " (expected an integer type)")
        }
    }
}

/// A zeroed, 64-byte aligned byte buffer that frees itself: the storage of an in-memory ``TensorFile``.
final class AlignedBytes {
    let bytes: UnsafeRawBufferPointer
    init(count: Int) {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1), alignment: 64)
        p.initializeMemory(as: UInt8.self, repeating: 0, count: max(count, 1))
        bytes = UnsafeRawBufferPointer(start: p, count: count)
    }
    deinit { bytes.baseAddress.map { UnsafeMutableRawPointer(mutating: $0).deallocate() } }
}
