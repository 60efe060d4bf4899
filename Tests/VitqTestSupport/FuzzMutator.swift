import Foundation
import VitqTensor

/// Seeded mutations of valid inputs for the file fuzzers: bit flips, byte insertions and
/// deletions, truncations, spliced garbage, and numbers in the text rewritten to huge, negative
/// or overflowing values (header edits). The same seed gives the same inputs.
public struct FuzzMutator {
    /// The seeded generator (vitq's SplitMix64).
    public var rng: SeededRandom

    public init(seed: UInt64) { rng = SeededRandom(seed: seed) }

    /// Integers a header edit puts in place of a number: zero, negatives, powers of two up to
    /// 2^63 − 1, and values just past Int64's range.
    public static let hostileNumbers = ["0", "-1", "1", "-9223372036854775808", "9223372036854775807", "9223372036854775808",
                                        "18446744073709551616", "4611686018427387904", "2305843009213693952", "1099511627776",
                                        "4294967296", "2147483648", "65536", "1e308", "-0", "1.5", "NaN", "nan", "inf", "-inf", ".nan"]

    /// How many times (1…`max`) to mutate one input.
    public mutating func rounds(max: Int = 3) -> Int { Int.random(in: 1...max, using: &rng) }

    /// A uniformly chosen element of `items` (which must not be empty).
    public mutating func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &rng)] }

    /// One random mutation of `bytes`. `textStart..<textEnd` is where the header text lies (numbers
    /// are rewritten only there); mutations outside it are binary.
    public mutating func mutate(_ bytes: inout [UInt8], text: Range<Int>? = nil) {
        let n = bytes.count
        switch Int.random(in: 0..<9, using: &rng) {
        case 0 where n > 0: // flip one bit
            bytes[Int.random(in: 0..<n, using: &rng)] ^= UInt8(1) << UInt8.random(in: 0...7, using: &rng)
        case 1 where n > 0: // set one byte
            bytes[Int.random(in: 0..<n, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
        case 2: // insert a few bytes
            let at = Int.random(in: 0...n, using: &rng)
            bytes.insert(contentsOf: (0..<Int.random(in: 1...4, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }, at: at)
        case 3 where n > 0: // delete a few bytes
            let at = Int.random(in: 0..<n, using: &rng)
            bytes.removeSubrange(at..<min(n, at + Int.random(in: 1...4, using: &rng)))
        case 4: // truncate
            bytes.removeSubrange(Int.random(in: 0...n, using: &rng)...)
        case 5 where n >= 8: // a little-endian 64-bit field set to a hostile value
            let at = Int.random(in: 0...(n - 8), using: &rng)
            let v: UInt64 = pick([0, 1, UInt64.max, UInt64(Int64.max), 1 << 63, 1 << 62, 1 << 40, 1 << 32, UInt64.random(in: 0...UInt64.max, using: &rng)])
            withUnsafeBytes(of: v.littleEndian) { for (i, b) in $0.enumerated() { bytes[at + i] = b } }
        case 6, 7: // header edit: a number in the text becomes a hostile one
            rewriteNumber(&bytes, in: text ?? 0..<n)
        default: // duplicate a slice of the input somewhere else (repeats keys, entries, lines)
            guard n > 0 else { return }
            let a = Int.random(in: 0..<n, using: &rng), b = min(n, a + Int.random(in: 1...32, using: &rng))
            bytes.insert(contentsOf: Array(bytes[a..<b]), at: Int.random(in: 0...n, using: &rng))
        }
    }

    /// Replaces one run of ASCII digits inside `range` with a hostile number.
    public mutating func rewriteNumber(_ bytes: inout [UInt8], in range: Range<Int>) {
        let lo = max(0, range.lowerBound), hi = min(bytes.count, range.upperBound)
        guard lo < hi else { return }
        let isDigit = { (b: UInt8) in b >= 0x30 && b <= 0x39 }
        var start = Int.random(in: lo..<hi, using: &rng)
        var tries = 0
        while !isDigit(bytes[start]) && tries < hi - lo { start = start + 1 == hi ? lo : start + 1; tries += 1 }
        guard isDigit(bytes[start]) else { return }
        while start > lo && isDigit(bytes[start - 1]) { start -= 1 }
        var end = start
        while end < hi && isDigit(bytes[end]) { end += 1 }
        bytes.replaceSubrange(start..<end, with: Array(pick(Self.hostileNumbers).utf8))
    }
}

extension FuzzMutator {
    /// The number of inputs each file fuzzer runs: `$VITQ_FUZZ_COUNT`, else `ciDefault`.
    public static func count(ciDefault: Int) -> Int {
        ProcessInfo.processInfo.environment["VITQ_FUZZ_COUNT"].flatMap { Int($0) }.map { max(1, $0) } ?? ciDefault
    }

    /// Writes `bytes` to `path` (created, or overwritten in place and then cut to length),
    /// cheaply: the fuzzers write one file per input. Not truncating to 0 first keeps ext4's
    /// replace-via-truncate heuristic from flushing the file on every close.
    public static func writeFile(_ bytes: [UInt8], to path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        precondition(fd >= 0, "cannot create \(path)")
        defer { close(fd) }
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress! + off, $0.count - off, off_t(off)) }
            precondition(n > 0, "cannot write \(path)")
            off += n
        }
        precondition(ftruncate(fd, off_t(bytes.count)) == 0, "cannot cut \(path)")
    }
}
