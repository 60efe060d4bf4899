import Foundation

/// Little-endian Float32 / Float64 arrays (and Int8 bytes) in binary frames, bit for bit.
enum BinaryValues {
    static func encode(_ v: [Float]) -> Data {
        var d = Data(capacity: v.count * 4)
        for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { d.append(contentsOf: $0) } }
        return d
    }

    static func encode(_ v: [Double]) -> Data {
        var d = Data(capacity: v.count * 8)
        for x in v { withUnsafeBytes(of: x.bitPattern.littleEndian) { d.append(contentsOf: $0) } }
        return d
    }

    static func encode(int8 v: [Int8]) -> Data { v.withUnsafeBytes { Data($0) } }

    /// The frame's bytes as Int8 values.
    static func int8s(_ d: Data) -> [Int8] { d.map { Int8(bitPattern: $0) } }

    /// The frame's Float32 values; nil unless it holds exactly `count` of them.
    static func floats(_ d: Data, count: Int) -> [Float]? {
        guard d.count == count * 4 else { return nil }
        return d.withUnsafeBytes { raw in
            (0..<count).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
    }

    /// The frame's Float64 values; nil unless it holds exactly `count` of them.
    static func doubles(_ d: Data, count: Int) -> [Double]? {
        guard d.count == count * 8 else { return nil }
        return d.withUnsafeBytes { raw in
            (0..<count).map { Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self))) }
        }
    }
}
