import Foundation
#if canImport(Glibc)
import Glibc
#endif
import VitqFormats
import VitqTestSupport
import XCTest

/// The torch.save zip reader: the real CIFAR-10 ViT against an independent python reader
/// (zipfile + a restricted pickle.Unpickler, Tests/scripts/make_hostile_pth.py), a small valid file
/// with f16/bf16 storages and a strided view, and hostile files each refused with one line.
final class PyTorchCheckpointTests: XCTestCase {
    static let script = Fixtures.packageRoot + "/Tests/scripts/make_hostile_pth.py"

    func python(_ args: [String]) throws -> Data {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", Self.script] + args
        let out = Pipe(); p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, "python3 \(args)")
        return data
    }

    func testFixtureMatchesIndependentReader() throws {
        try Fixtures.require()
        let path = Fixtures.cifarViT
        let f = try TensorFile.open(path: path)
        XCTAssertEqual(f.format, .pytorch)
        XCTAssertEqual(f.tensors.count, 80)
        XCTAssertEqual(f.tensors.values.reduce(0) { $0 + $1.count }, 811_146)
        XCTAssertEqual(try f.info("pos_embed").shape, [1, 65, 128])
        XCTAssertEqual(try f.info("transformer.layers.0.self_attn.in_proj_weight").shape, [384, 128])
        let ref = try JSONSerialization.jsonObject(with: try python(["reference", path])) as! [String: [String: Any]]
        XCTAssertEqual(Set(ref.keys), Set(f.names))
        for name in f.names {
            let r = ref[name]!
            XCTAssertEqual(try f.info(name).shape, r["shape"] as! [Int], name)
            XCTAssertEqual(SHA256.hex(of: Data(try f.rawBytes(name))), r["sha256"] as! String, name)
        }
        let first = try f.floatTensor("transformer.layers.5.linear2.weight")
        let want = (ref["transformer.layers.5.linear2.weight"]!["first"] as! [Double]).map(Float.init)
        XCTAssertEqual((0..<4).map { first.data[$0] }, want)
    }

    func makeFiles() throws -> String {
        let dir = makeTempDir()
        _ = try python(["make", dir])
        return dir
    }

    func testSmallValidFile() throws {
        let dir = try makeFiles(); defer { try? FileManager.default.removeItem(atPath: dir) }
        let exp = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/valid.json"))) as! [String: Any]
        for file in ["valid.pth", "wrapped.pth"] {
            let f = try TensorFile.open(path: dir + "/" + file)
            XCTAssertEqual(f.names, ["b", "h", "w", "wt"])
            XCTAssertEqual(try f.info("h").dtype, .f16)
            XCTAssertEqual(try f.info("b").dtype, .bf16)
            for (name, shape) in [("w", [3, 4]), ("wt", [3, 2]), ("h", [2, 3])] {
                let t = try f.floatTensor(name)
                XCTAssertEqual(try f.info(name).shape, shape)
                let rows = exp[name] as! [[Double]]
                XCTAssertEqual((0..<t.count).map { t.data[$0] }, rows.flatMap { $0 }.map(Float.init), name)
            }
            let b = try f.floatTensor("b")
            XCTAssertEqual((0..<4).map { b.data[$0] }, [1.0, -2.5, 3.25, 0.125])
        }
    }

    func testHostileFilesRefusedWithOneLine() throws {
        let dir = try makeFiles(); defer { try? FileManager.default.removeItem(atPath: dir) }
        let cases: [(String, String)] = [
            ("system.pth", "refused global 'posix.system'"),
            ("function.pth", "refused global 'json.dumps'"),
            ("class.pth", "refused global 'datetime.date'"),
            ("past.pth", "tensor 'w': offset 10, size [2, 4], stride [4, 1] reach element 17 of a 12-element storage"),
            ("missing.pth", "archive/data/9: storage referenced by 'w' is missing"),
            ("deflate.pth", "entry 'archive/data/0' is compressed"),
            ("bigendian.pth", "archive/byteorder: byte order 'big' is not 'little'"),
            ("truncated.pth", "truncated"),
            ("crc.pth", "archive/data/0: CRC-32 mismatch"),
        ]
        for (file, want) in cases {
            let path = dir + "/" + file
            do {
                _ = try TensorFile.open(path: path)
                XCTFail("\(file) was accepted")
            } catch let e as FormatError {
                let line = e.description
                XCTAssertTrue(line.hasPrefix(path + ": "), line)
                XCTAssertTrue(line.contains(want), "\(file): \(line)")
                XCTAssertFalse(line.contains("\n"), line)
            }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/canary"))
    }

    /// Mutated copies of the small valid file are read or refused with a FormatError, never a trap.
    func testMutatedFilesNeverTrap() throws {
        let dir = try makeFiles(); defer { try? FileManager.default.removeItem(atPath: dir) }
        let valid = [UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/valid.pth")))
        var m = FuzzMutator(seed: 0x9717)
        let path = dir + "/fuzz.pth"
        for _ in 0..<FuzzMutator.count(ciDefault: 300) {
            var bytes = valid
            for _ in 0..<m.rounds() { m.mutate(&bytes) }
            if bytes.count >= 4 { bytes.replaceSubrange(0..<4, with: [0x50, 0x4B, 0x03, 0x04]) }
            FuzzMutator.writeFile(bytes, to: path)
            do { _ = try TensorFile.open(path: path) } catch is FormatError {}
        }
    }

    /// Sniffing the format must not open a FIFO for reading (which blocks until a writer comes).
    func testAFIFOIsRefusedWithoutBlocking() throws {
        let dir = makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/model.pth"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        XCTAssertThrowsError(try TensorFile.open(path: fifo)) { XCTAssertTrue("\($0)".contains(fifo), "\($0)") }
    }
}
