import Foundation
import VitqFormats
import VitqTestSupport
import XCTest

/// `AtomicFile`: a planted file or symlink in the output folder cannot redirect a write, the
/// temporary name cannot be guessed, secrets are 0600 from their first byte, and a failed or
/// refused write leaves nothing behind.
final class AtomicFileTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func contents(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }

    func mode(_ path: String) -> mode_t {
        var st = stat()
        XCTAssertEqual(lstat(path, &st), 0, path)
        return st.st_mode & 0o777
    }

    /// The names in `dir` other than `keep`.
    func others(_ keep: Set<String>) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir).filter { !keep.contains($0) }.sorted()
    }

    /// Before the fix the temporary file was `.NAME.tmp.PID`, opened with O_CREAT|O_TRUNC: a
    /// symlink planted there made the write truncate and fill the symlink's target.
    func testASymlinkPlantedAtThePredictableTemporaryNameIsNotFollowed() throws {
        let victim = dir + "/victim.txt", out = dir + "/out.bin"
        try "precious".write(toFile: victim, atomically: false, encoding: .utf8)
        let planted = dir + "/.out.bin.tmp.\(getpid())"
        XCTAssertEqual(symlink(victim, planted), 0)
        try AtomicFile.write(Data("new bytes".utf8), to: out)
        XCTAssertEqual(contents(victim), "precious", "the symlink's target is untouched")
        XCTAssertEqual(contents(out), "new bytes")
        var st = stat()
        XCTAssertEqual(lstat(out, &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFREG, "the output is a regular file, not the planted symlink")
        XCTAssertEqual(try others(["victim.txt", "out.bin", ".out.bin.tmp.\(getpid())"]), [], "no temporary file is left")
    }

    /// The temporary file is new on every write and its name carries 64 random bits.
    func testTheTemporaryNameIsNotPredictable() throws {
        let out = dir + "/model.safetensors"
        var names: [String] = []
        for _ in 0..<3 {
            try AtomicFile.write(to: out) { emit in
                let tmp = try self.others(["model.safetensors"])
                XCTAssertEqual(tmp.count, 1, "\(tmp)")
                names += tmp
                try Data("x".utf8).withUnsafeBytes { try emit($0) }
            }
        }
        XCTAssertEqual(Set(names).count, 3, "a new name each time: \(names)")
        for name in names {
            XCTAssertNotEqual(name, ".model.safetensors.tmp.\(getpid())")
            XCTAssertTrue(name.hasPrefix(AtomicFile.temporaryPrefix(for: out)), name)
            let suffix = name.dropFirst(AtomicFile.temporaryPrefix(for: out).count)
            XCTAssertEqual(suffix.count, 16, name)
            XCTAssertTrue(suffix.allSatisfy(\.isHexDigit), name)
            XCTAssertFalse(suffix.contains("\(getpid())") && suffix.count < 8, name)
        }
        XCTAssertEqual(try others(["model.safetensors"]), [])
    }

    /// A secret is never readable by others, not even while it is being written.
    func testASecretIsCreated0600AndAPublicFile0644LessTheUmask() throws {
        let old = umask(0o022)
        defer { umask(old) }
        let secret = dir + "/k.key", pub = dir + "/k.pub"
        try AtomicFile.write(to: secret, mode: AtomicFile.secretMode) { emit in
            let tmp = try self.others([])
            XCTAssertEqual(tmp.count, 1)
            XCTAssertEqual(self.mode(self.dir + "/" + tmp[0]), 0o600, "0600 while being written")
            try Data("secret".utf8).withUnsafeBytes { try emit($0) }
        }
        XCTAssertEqual(mode(secret), 0o600)
        try AtomicFile.write(Data("public".utf8), to: pub)
        XCTAssertEqual(mode(pub), 0o644)
        umask(0o077)
        try AtomicFile.write(Data("public".utf8), to: dir + "/strict.pub")
        XCTAssertEqual(mode(dir + "/strict.pub"), 0o600, "the umask still applies")
    }

    /// `replacing: false` refuses an existing file (or symlink) and leaves it as it was.
    func testNoReplaceRefusesAnExistingFileAndLeavesNoTemporary() throws {
        let path = dir + "/journal"
        try "old".write(toFile: path, atomically: false, encoding: .utf8)
        XCTAssertThrowsError(try AtomicFile.write(Data("new".utf8), to: path, replacing: false)) { e in
            XCTAssertTrue("\(e)".contains(path) && "\(e)".contains("exists"), "\(e)")
        }
        XCTAssertEqual(contents(path), "old")
        let victim = dir + "/victim", link = dir + "/link"
        try "precious".write(toFile: victim, atomically: false, encoding: .utf8)
        XCTAssertEqual(symlink(victim, link), 0)
        XCTAssertThrowsError(try AtomicFile.write(Data("new".utf8), to: link, replacing: false))
        XCTAssertEqual(contents(victim), "precious")
        XCTAssertEqual(try others(["journal", "victim", "link"]), [])
        try AtomicFile.write(Data("fresh".utf8), to: dir + "/new", replacing: false)
        XCTAssertEqual(contents(dir + "/new"), "fresh")
    }

    /// An error in the producer leaves neither the output nor a temporary file.
    func testAFailedWriteLeavesNothing() throws {
        struct Boom: Error {}
        XCTAssertThrowsError(try AtomicFile.write(to: dir + "/out") { emit in
            try Data("half".utf8).withUnsafeBytes { try emit($0) }
            throw Boom()
        })
        XCTAssertEqual(try others([]), [])
    }
}
