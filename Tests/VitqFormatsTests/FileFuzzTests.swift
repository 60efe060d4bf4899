import Foundation
import VitqFormats
import VitqTestSupport
import XCTest

/// Seeded fuzzing of the safetensors and `.npy` readers: valid small files made at test time,
/// mutated (bit flips, byte insertions and deletions, truncations, 64-bit fields and header
/// numbers set to huge, negative or overflowing values, repeated slices). Every input opens or
/// throws a ``FormatError``; every opened tensor reads back or throws one; nothing traps.
/// `VITQ_FUZZ_COUNT` sets the inputs per fuzzer (CI default below; the issue's bar is 10^6).
final class FileFuzzTests: XCTestCase {
    static let ciDefault = 100_000
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// Seeds: the tiny ViT, a file with every dtype (and an empty and a scalar tensor), and a
    /// metadata-only file.
    func safetensorsSeeds() -> [[UInt8]] {
        var all = SafeTensorsWriter()
        for (i, d) in DType.allCases.enumerated() { all.add("t\(i)", dtype: d, shape: [2, 1], bytes: Data((0..<(2 * d.size)).map { UInt8($0 * 37 & 0xFF) })) }
        all.add("empty", dtype: .f32, shape: [0, 3], bytes: Data())
        all.add("scalar", dtype: .f64, shape: [], bytes: Data(count: 8))
        all.metadata = ["format": "x", "k": "v"]
        var meta = SafeTensorsWriter()
        meta.metadata = ["only": "metadata"]
        return [Array(TinyViTFile.writer().serialized()), Array(all.serialized()), Array(meta.serialized())]
    }

    /// Opens `path` and reads every tensor the way the loaders do.
    func readSafetensors(_ path: String) throws -> Int {
        let f = try TensorFile(path: path)
        var read = 0
        for name in f.names {
            let info = try f.info(name)
            _ = try f.rawBytes(name)
            switch info.dtype {
            case .f32, .f16, .bf16, .f64: read += try f.floatTensor(name).count
            case .bool: XCTAssertThrowsError(try f.integers(name))
            default: read += try f.integers(name).count
            }
        }
        return read
    }

    func testSafetensorsFuzz() throws {
        let seeds = safetensorsSeeds()
        for s in seeds { XCTAssertNoThrow(try readSafetensors(write(s))) }
        let total = FuzzMutator.count(ciDefault: Self.ciDefault)
        var m = FuzzMutator(seed: 0x5AFE)
        var opened = 0, rejected = 0, foreign: [String] = []
        let path = dir + "/f.safetensors"
        let start = Date()
        for i in 0..<total {
            var bytes = m.pick(seeds)
            let header = 8..<max(8, min(bytes.count, 8 + Int(bytes[0]) + Int(bytes[1]) << 8))
            for _ in 0..<m.rounds() { m.mutate(&bytes, text: header) }
            FuzzMutator.writeFile(bytes, to: path)
            do { _ = try readSafetensors(path); opened += 1 } catch is FormatError { rejected += 1 } catch {
                if foreign.count < 5 { foreign.append("input \(i): \(type(of: error)): \(error)") }
            }
        }
        print("safetensors fuzz: \(total) inputs, \(opened) opened, \(rejected) rejected, \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        XCTAssertEqual(foreign, [], "every rejection is a FormatError")
        XCTAssertEqual(opened + rejected, total)
        XCTAssertGreaterThan(opened, total / 50, "mutations that keep a file valid still open")
        XCTAssertGreaterThan(rejected, total / 4)
    }

    /// Seeds: uint8 images, int64 labels and float32 arrays (1-D, 4-D and 0-D), and a version
    /// 2.0 header.
    func npySeeds() -> [[UInt8]] {
        var v2 = Array(NpyWriter.serialize(dtype: .int64, shape: [3], bytes: Data(count: 24)))
        // Version 2.0: a 4-byte header length.
        let hlen = Int(v2[8]) | Int(v2[9]) << 8
        v2[6] = 2
        v2.replaceSubrange(8..<10, with: [UInt8(hlen & 0xFF), UInt8(hlen >> 8), 0, 0])
        return [
            Array(NpyWriter.serialize(dtype: .uint8, shape: [2, 4, 4, 3], bytes: Data((0..<96).map { UInt8($0) }))),
            Array(NpyWriter.serialize(dtype: .int64, shape: [5], bytes: Data(count: 40))),
            Array(NpyWriter.serialize(dtype: .float32, shape: [2, 3], bytes: Data(count: 24))),
            Array(NpyWriter.serialize(dtype: .float32, shape: [], bytes: Data(count: 4))),
            v2,
        ]
    }

    func readNpy(_ path: String) throws -> Int {
        let a = try NpyArray(path: path)
        XCTAssertEqual(a.bytes.count, a.count * (a.dtype == .uint8 ? 1 : a.dtype == .int64 ? 8 : 4))
        switch a.dtype {
        case .uint8: return a.bytes.reduce(0) { $0 &+ Int($1) }
        case .int64: return try a.int64s().count
        case .float32: return try a.floats().count
        }
    }

    func testNpyFuzz() throws {
        let seeds = npySeeds()
        for s in seeds { XCTAssertNoThrow(try readNpy(write(s, ext: "npy"))) }
        let total = FuzzMutator.count(ciDefault: Self.ciDefault)
        var m = FuzzMutator(seed: 0x4E50)
        var opened = 0, rejected = 0, foreign: [String] = []
        let path = dir + "/f.npy"
        let start = Date()
        for i in 0..<total {
            var bytes = m.pick(seeds)
            for _ in 0..<m.rounds() { m.mutate(&bytes, text: 10..<max(10, min(bytes.count, 128))) }
            FuzzMutator.writeFile(bytes, to: path)
            do { _ = try readNpy(path); opened += 1 } catch is FormatError { rejected += 1 } catch {
                if foreign.count < 5 { foreign.append("input \(i): \(type(of: error)): \(error)") }
            }
        }
        print("npy fuzz: \(total) inputs, \(opened) opened, \(rejected) rejected, \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        XCTAssertEqual(foreign, [], "every rejection is a FormatError")
        XCTAssertEqual(opened + rejected, total)
        XCTAssertGreaterThan(opened, total / 50)
        XCTAssertGreaterThan(rejected, total / 4)
    }

    func write(_ bytes: [UInt8], ext: String = "safetensors") -> String {
        let p = dir + "/seed-\(UUID().uuidString).\(ext)"
        FuzzMutator.writeFile(bytes, to: p)
        return p
    }
}
