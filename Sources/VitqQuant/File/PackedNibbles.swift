/// Weights of 4 bits or fewer, stored two per byte (Docs/QMODEL_FORMAT.md, "Packed weights"):
/// each row of `inFeatures` values becomes ⌈inFeatures/2⌉ bytes, value 2i in the low nibble
/// and value 2i+1 in the high nibble, each as a 4-bit two's complement; an odd row's last high
/// nibble is 0. Rows start on a byte, so a row's bytes are its own.
public enum PackedNibbles {
    /// The widest grid stored packed.
    public static let maxBits = 4

    /// Whether a weight of `bits` is stored packed.
    public static func isPacked(bits: Int) -> Bool { bits <= maxBits }

    /// Bytes per packed row of `inFeatures` values.
    public static func rowBytes(_ inFeatures: Int) -> Int { (inFeatures + 1) / 2 }

    /// Packs `values` ([rows, inFeatures], each in −8…7) two per byte.
    public static func pack(_ values: [Int8], rows: Int, inFeatures: Int) -> [UInt8] {
        precondition(values.count == rows * inFeatures)
        let rb = rowBytes(inFeatures)
        var out = [UInt8](repeating: 0, count: rows * rb)
        for r in 0..<rows {
            for k in 0..<inFeatures {
                let v = values[r * inFeatures + k]
                precondition(v >= -8 && v <= 7, "a packed weight must fit 4 bits")
                let nibble = UInt8(bitPattern: v) & 0x0F
                out[r * rb + k / 2] |= k % 2 == 0 ? nibble : nibble << 4
            }
        }
        return out
    }

    /// Unpacks ``pack(_:rows:inFeatures:)``'s bytes; nil when an odd row's padding nibble is not 0.
    public static func unpack(_ bytes: [UInt8], rows: Int, inFeatures: Int) -> [Int8]? {
        let rb = rowBytes(inFeatures)
        guard bytes.count == rows * rb else { return nil }
        var out = [Int8](repeating: 0, count: rows * inFeatures)
        for r in 0..<rows {
            for k in 0..<inFeatures {
                let b = bytes[r * rb + k / 2]
                let nibble = k % 2 == 0 ? b & 0x0F : b >> 4
                // Sign-extend the 4-bit two's complement.
                out[r * inFeatures + k] = Int8(bitPattern: nibble << 4) >> 4
            }
            if inFeatures % 2 == 1 && bytes[r * rb + rb - 1] >> 4 != 0 { return nil }
        }
        return out
    }
}
