import Foundation

/// The `.npy` element types vitq reads and writes.
public enum NpyDType: String, Sendable {
    case uint8 = "|u1", int64 = "<i8", float32 = "<f4"
    var size: Int { switch self { case .uint8: 1; case .int64: 8; case .float32: 4 } }
}

/// A `.npy` array (format 1.0–3.0, C order) backed by a memory mapping.
public final class NpyArray: @unchecked Sendable {
    public let path: String
    public let dtype: NpyDType
    public let shape: [Int]
    /// The element bytes (little-endian, C order), valid while this object lives.
    public let bytes: UnsafeRawBufferPointer
    private let file: MappedFile

    public var count: Int { CheckedSize.product(shape) ?? 0 }

    /// Opens `path`. `expect`, when given, is the only accepted dtype.
    public init(path: String, expect: NpyDType? = nil) throws {
        file = try MappedFile(path: path)
        self.path = path
        let b = file.bytes
        guard b.count >= 10, b[0] == 0x93, Array(b[1..<6]) == Array("NUMPY".utf8) else {
            throw FormatError.badHeader(path: path, detail: "not a .npy file (bad magic)")
        }
        let major = b[6]
        let (lenSize, headerStart): (Int, Int) = major == 1 ? (2, 10) : (4, 12)
        guard major >= 1 && major <= 3, b.count >= headerStart else { throw FormatError.badHeader(path: path, detail: "unsupported .npy version \(major)") }
        let hlen = lenSize == 2 ? Int(file.readLE(UInt16.self, at: 8)) : Int(file.readLE(UInt32.self, at: 8))
        guard headerStart + hlen <= b.count else { throw FormatError.truncated(path: path, detail: "header of \(hlen) bytes runs past the end") }
        guard let header = String(bytes: b[headerStart..<(headerStart + hlen)], encoding: .utf8) else {
            throw FormatError.badHeader(path: path, detail: "header is not text")
        }
        guard let descr = Self.field("descr", in: header) else { throw FormatError.badHeader(path: path, detail: "no 'descr' in header") }
        let descrValue = descr.trimmingCharacters(in: CharacterSet(charactersIn: "'\" "))
        guard let dt = NpyDType(rawValue: descrValue == "<u1" ? "|u1" : descrValue) else {
            throw FormatError.unsupportedDtype(path: path, key: "descr", dtype: descrValue + " (supported: |u1, <i8, <f4)")
        }
        if let expect, expect != dt {
            throw FormatError.unsupportedDtype(path: path, key: "descr", dtype: "\(descrValue), expected \(expect.rawValue)")
        }
        guard let fortran = Self.field("fortran_order", in: header) else { throw FormatError.badHeader(path: path, detail: "no 'fortran_order' in header") }
        guard fortran.trimmingCharacters(in: .whitespaces) == "False" else { throw FormatError.badHeader(path: path, detail: "Fortran-order arrays are not supported") }
        guard let open = header.range(of: "'shape':"), let lp = header[open.upperBound...].firstIndex(of: "("),
              let rp = header[lp...].firstIndex(of: ")") else { throw FormatError.badHeader(path: path, detail: "no 'shape' in header") }
        let dims = header[header.index(after: lp)..<rp].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var shape: [Int] = []
        for d in dims {
            guard let v = Int(d), v >= 0 else { throw FormatError.badHeader(path: path, detail: "bad shape entry '\(d)'") }
            shape.append(v)
        }
        dtype = dt
        self.shape = shape
        let dataStart = headerStart + hlen
        guard let need = CheckedSize.product(shape + [dt.size]) else {
            throw FormatError.badHeader(path: path, detail: "shape \(shape) overflows a 64-bit byte count")
        }
        guard b.count - dataStart >= need else {
            throw FormatError.truncated(path: path, detail: "shape \(shape) needs \(need) data bytes, file has \(b.count - dataStart)")
        }
        bytes = UnsafeRawBufferPointer(rebasing: b[dataStart..<(dataStart + need)])
    }

    private static func field(_ name: String, in header: String) -> String? {
        guard let r = header.range(of: "'\(name)':") else { return nil }
        let rest = header[r.upperBound...]
        let end = rest.firstIndex(of: ",") ?? rest.endIndex
        return String(rest[..<end])
    }

    /// The elements as Float (float32 arrays only).
    public func floats() throws -> [Float] {
        guard dtype == .float32 else { throw FormatError.unsupportedDtype(path: path, key: "descr", dtype: "\(dtype.rawValue), expected <f4") }
        return (0..<count).map { bytes.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
    }

    /// The elements as Int (int64 arrays only).
    public func int64s() throws -> [Int] {
        guard dtype == .int64 else { throw FormatError.unsupportedDtype(path: path, key: "descr", dtype: "\(dtype.rawValue), expected <i8") }
        return (0..<count).map { Int(bytes.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
    }
}

/// Writes `.npy` files (format 1.0, C order) atomically.
public enum NpyWriter {
    /// Serialises raw little-endian element bytes with a header for `dtype` and `shape`.
    public static func serialize(dtype: NpyDType, shape: [Int], bytes: Data) -> Data {
        precondition(shape.reduce(1, *) * dtype.size == bytes.count)
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(dtype.rawValue)', 'fortran_order': False, 'shape': \(shapeText), }"
        while (10 + header.utf8.count + 1) % 64 != 0 { header += " " }
        header += "\n"
        var out = Data([0x93] + Array("NUMPY".utf8) + [1, 0])
        withUnsafeBytes(of: UInt16(header.utf8.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(Data(header.utf8))
        out.append(bytes)
        return out
    }

    public static func write(floats: [Float], shape: [Int], to path: String) throws {
        try AtomicFile.write(serialize(dtype: .float32, shape: shape, bytes: floats.withUnsafeBufferPointer { Data(buffer: $0) }), to: path)
    }

    public static func write(int64s: [Int], shape: [Int], to path: String) throws {
        let v = int64s.map { Int64($0).littleEndian }
        try AtomicFile.write(serialize(dtype: .int64, shape: shape, bytes: v.withUnsafeBufferPointer { Data(buffer: $0) }), to: path)
    }

    public static func write(uint8s: [UInt8], shape: [Int], to path: String) throws {
        try AtomicFile.write(serialize(dtype: .uint8, shape: shape, bytes: Data(uint8s)), to: path)
    }
}
