import Foundation

/// A strict reader of the zip archives `torch.save` writes: every entry stored (uncompressed),
/// all inside one top-level folder, unique names, sizes inside the file, CRC-32 checked on read.
/// No zip64, no encryption, no compression: anything else is refused with one line.
struct StoredZip {
    /// One entry: its name without the archive folder, and the byte range of its data.
    struct Entry { let name: String; let range: Range<Int>; let crc: UInt32 }

    let path: String
    let file: MappedFile
    /// The archive folder (the one top-level directory every entry is in).
    let folder: String
    /// Entries by name relative to ``folder``.
    let entries: [String: Entry]

    init(path: String, file: MappedFile) throws {
        self.path = path; self.file = file
        let b = file.bytes, n = b.count
        func u16(_ o: Int) -> Int { Int(b[o]) | Int(b[o + 1]) << 8 }
        func u32(_ o: Int) -> Int { u16(o) | u16(o + 2) << 16 }
        func bad(_ d: String) -> FormatError { .badCheckpoint(path: path, object: "zip", detail: d) }
        guard n >= 22 else { throw FormatError.truncated(path: path, detail: "\(n) bytes, too short for a zip") }
        var eocd = -1
        var o = n - 22
        while o >= max(0, n - 22 - 65_535) {
            if u32(o) == 0x0605_4b50 { eocd = o; break }
            o -= 1
        }
        guard eocd >= 0 else { throw FormatError.truncated(path: path, detail: "no zip end-of-central-directory record (truncated zip?)") }
        let count = u16(eocd + 10), cdSize = u32(eocd + 12), cdOff = u32(eocd + 16)
        guard u16(eocd + 4) == 0, u16(eocd + 6) == 0, u16(eocd + 8) == count else { throw bad("multi-disk zips are not supported") }
        guard cdOff != 0xFFFF_FFFF, count != 0xFFFF else { throw bad("zip64 archives are not supported") }
        guard cdOff <= eocd, cdSize <= eocd - cdOff else { throw FormatError.truncated(path: path, detail: "zip central directory lies outside the file") }
        var out: [String: Entry] = [:]
        var folder: String? = nil
        var p = cdOff
        let cdEnd = cdOff + cdSize
        for _ in 0..<count {
            guard p + 46 <= cdEnd, u32(p) == 0x0201_4b50 else { throw bad("malformed central directory entry") }
            let flags = u16(p + 8), method = u16(p + 10), crc = UInt32(u32(p + 16))
            let csize = u32(p + 20), usize = u32(p + 24)
            let nl = u16(p + 28), el = u16(p + 30), cl = u16(p + 32), local = u32(p + 42)
            guard p + 46 + nl + el + cl <= cdEnd else { throw bad("central directory entry runs past the directory") }
            guard let full = String(bytes: b[(p + 46)..<(p + 46 + nl)], encoding: .utf8) else { throw bad("entry name is not UTF-8") }
            p += 46 + nl + el + cl
            guard method == 0 else { throw bad("entry '\(full)' is compressed (method \(method)); torch.save stores entries uncompressed") }
            guard flags & 1 == 0 else { throw bad("entry '\(full)' is encrypted") }
            guard csize == usize, csize != 0xFFFF_FFFF, local != 0xFFFF_FFFF else { throw bad("entry '\(full)' has inconsistent or zip64 sizes") }
            let parts = full.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard parts.count >= 2, !parts[0].isEmpty, !parts.contains(".."), !parts.contains(""), !full.hasPrefix("/") else {
                throw bad("entry '\(full)' is outside the archive folder")
            }
            if let f = folder, f != parts[0] { throw bad("entry '\(full)' is outside the archive folder '\(f)'") }
            folder = parts[0]
            let rel = parts.dropFirst().joined(separator: "/")
            guard out[rel] == nil else { throw bad("entry '\(full)' appears twice") }
            guard local <= n - 30, u32(local) == 0x0403_4b50 else { throw FormatError.truncated(path: path, detail: "entry '\(full)': local header missing (truncated zip?)") }
            guard u16(local + 8) == 0 else { throw bad("entry '\(full)' is compressed in its local header") }
            let lnl = u16(local + 26), lel = u16(local + 28)
            let start = local + 30 + lnl + lel
            guard start <= n, csize <= n - start else { throw FormatError.truncated(path: path, detail: "entry '\(full)': data runs past the end of the file") }
            guard lnl == nl, b[(local + 30)..<(local + 30 + nl)].elementsEqual(b[(p - el - cl - nl)..<(p - el - cl)]) else {
                throw bad("entry '\(full)': local name differs from the central directory")
            }
            out[rel] = Entry(name: rel, range: start..<(start + csize), crc: crc)
        }
        guard let f = folder else { throw bad("the archive is empty") }
        self.folder = f; entries = out
    }

    /// The bytes of entry `name` (relative to the folder), CRC-checked; nil when absent.
    func data(_ name: String) throws -> UnsafeRawBufferPointer? {
        guard let e = entries[name] else { return nil }
        let slice = UnsafeRawBufferPointer(rebasing: file.bytes[e.range])
        guard CRC32.of(slice) == e.crc else {
            throw FormatError.badCheckpoint(path: path, object: "\(folder)/\(name)", detail: "CRC-32 mismatch (corrupted entry)")
        }
        return slice
    }
}

/// CRC-32 (IEEE, as zip uses).
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { i -> UInt32 in
        var c = UInt32(i)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }
    static func of(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        table.withUnsafeBufferPointer { t in
            for byte in bytes { c = t[Int((c ^ UInt32(byte)) & 0xFF)] ^ (c >> 8) }
        }
        return c ^ 0xFFFF_FFFF
    }
}
