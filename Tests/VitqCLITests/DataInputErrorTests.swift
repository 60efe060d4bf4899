import Foundation
import VitqFormats
import VitqTestSupport
import XCTest

/// Bad data inputs through the built `vitq`: one line naming the flag or file, exit 1, no output
/// file, and never a hang (ImageFolder FIFOs) or a huge allocation (extreme aspect ratios).
final class DataInputErrorTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// Runs vitq (killed after `seconds`) expecting exit 1, one stderr line holding every needle, no stdout.
    func assertFails(_ args: [String], mentions needles: [String], seconds: Double = 120,
                     file: StaticString = #filePath, line: UInt = #line) throws {
        let log = dir + "/log-\(UUID().uuidString).txt"
        let p = try CLIRunner.start(args, log: log)
        let status = CLIRunner.wait(p, seconds: seconds)
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertEqual(status, 1, "exit status (nil: killed after \(seconds) s); output: \(text)", file: file, line: line)
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "one line: \(text)", file: file, line: line)
        for n in needles { XCTAssertTrue(text.contains(n), "'\(text)' should mention '\(n)'", file: file, line: line) }
    }

    /// The first `n` even500 images as a .npy, and labels with `bad` at index `at` (else even500's).
    func smallData(_ n: Int, bad: Int? = nil, at: Int = 0) throws -> (images: String, labels: String) {
        let rows = try NpyArray(path: Fixtures.even500Images, expect: .uint8)
        let plane = 224 * 224 * 3
        let bytes = withExtendedLifetime(rows) { Array(rows.bytes.prefix(n * plane)) }
        var labels = Array(try NpyArray(path: Fixtures.even500Labels, expect: .int64).int64s().prefix(n))
        if let bad { labels[at] = bad }
        let images = dir + "/im.npy", lp = dir + "/labels.npy"
        try NpyWriter.write(uint8s: bytes, shape: [n, 224, 224, 3], to: images)
        try NpyWriter.write(int64s: labels, shape: [n], to: lp)
        return (images, lp)
    }

    func testLabelsOutsideTheHeadAreRefusedBeforeAnyWork() throws {
        try Fixtures.require()
        let (images, labels) = try smallData(4, bad: 1000, at: 2)
        try assertFails(["eval", Fixtures.vitTiny, "--data", images, "--labels", labels],
                        mentions: [labels + ": label 1000 of image 2", "outside 0…999"])
        let out = dir + "/q.safetensors"
        try assertFails(["quantize", Fixtures.vitTiny, "--data", images, "--labels", labels, "--calib", "4", "--out", out],
                        mentions: [labels + ": label 1000 of image 2"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        let (_, negative) = try smallData(4, bad: -1, at: 0)
        try assertFails(["eval", Fixtures.vitTiny, "--data", images, "--labels", negative], mentions: [negative + ": label -1 of image 0"])
    }

    func testBadNormalisationFlagsAreOneLine() throws {
        try Fixtures.require()
        let (images, _) = try smallData(2)
        for (flag, value) in [("--mean", "nan,0.5,0.5"), ("--mean", "0.5,inf,0.5"), ("--mean", "0.5,0.5"), ("--std", "0.5,0,0.5"),
                              ("--std", "0.5,-1,0.5"), ("--std", "nan,1,1"), ("--mean", "a,b,c"), ("--crop-pct", "0"), ("--crop-pct", "nan")] {
            try assertFails(["eval", Fixtures.vitTiny, "--data", images, flag, value], mentions: [flag])
        }
        // Where the raw EncodingError used to come from: the quantized file's JSON metadata.
        let out = dir + "/q.safetensors"
        try assertFails(["quantize", Fixtures.vitTiny, "--data", images, "--calib", "2", "--out", out, "--mean", "nan,nan,nan"], mentions: ["--mean"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    /// An ImageFolder with one class folder holding `name`, plus a good fixture JPEG beside it.
    func folder(with name: String, make: (String) throws -> Void) throws -> (root: String, path: String) {
        let root = dir + "/folder", cls = root + "/n01440764"
        try FileManager.default.createDirectory(atPath: cls, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Fixtures.path("imagenet_sample/jpeg/n01440764_tench.JPEG"), toPath: cls + "/a.JPEG")
        try make(cls + "/" + name)
        return (root, cls + "/" + name)
    }

    func testFIFOInImageFolderIsOneLineNotAHang() throws {
        try Fixtures.require()
        let (root, fifo) = try folder(with: "b.jpg") { XCTAssertEqual(mkfifo($0, 0o644), 0) }
        try assertFails(["eval", Fixtures.vitTiny, "--data", root], mentions: [fifo, "FIFO"], seconds: 60)
    }

    /// `--data`, `--labels` and `--class-index` naming a FIFO: one line, not a blocked open().
    func testFIFOAsDataLabelsOrClassIndexIsOneLineNotAHang() throws {
        try Fixtures.require()
        let (images, _) = try smallData(2)
        let fifo = dir + "/fifo.npy"
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        try assertFails(["eval", Fixtures.vitTiny, "--data", fifo], mentions: [fifo + ": is a FIFO, not a regular file"], seconds: 60)
        try assertFails(["eval", Fixtures.vitTiny, "--data", images, "--labels", fifo], mentions: [fifo + ": is a FIFO"], seconds: 60)
        let (root, _) = try folder(with: "b.jpg") { try FileManager.default.copyItem(atPath: Fixtures.path("imagenet_sample/jpeg/n01440764_tench.JPEG"), toPath: $0) }
        try assertFails(["eval", Fixtures.vitTiny, "--data", root, "--class-index", fifo], mentions: [fifo + ": bad class index: is a FIFO"], seconds: 60)
    }

    func testNestedFolderAndParentLinkInImageFolder() throws {
        try Fixtures.require()
        let (root, sub) = try folder(with: "sub") { try FileManager.default.createDirectory(atPath: $0, withIntermediateDirectories: true) }
        try FileManager.default.copyItem(atPath: Fixtures.path("imagenet_sample/jpeg/n01440764_tench.JPEG"), toPath: sub + "/c.jpg")
        let r = try CLIRunner.run(["eval", Fixtures.vitTiny, "--data", root, "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("\"images\":2"), r.stdout)
        try FileManager.default.createSymbolicLink(atPath: sub + "/up", withDestinationPath: "..")
        try assertFails(["eval", Fixtures.vitTiny, "--data", root], mentions: [sub + "/up", "already walked"], seconds: 60)
    }

    func testTruncatedJPEGIsOneLine() throws {
        try Fixtures.require()
        let good = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("imagenet_sample/jpeg/n01440764_tench.JPEG")))
        let (root, path) = try folder(with: "cut.jpg") { FileManager.default.createFile(atPath: $0, contents: good.prefix(good.count / 2)) }
        try assertFails(["eval", Fixtures.vitTiny, "--data", root], mentions: [path, "truncated JPEG"])
    }

    /// 1×20000 pixels in a few KB: refused at once, instead of a 3.9 GB resize.
    func testExtremeAspectRatioJPEGIsOneLine() throws {
        try Fixtures.require()
        let (root, path) = try folder(with: "tall.jpg") { p in
            try PythonImages.run("from PIL import Image; Image.new('RGB', (1, 20000), (90, 120, 200)).save('\(p)')", in: dir)
        }
        try assertFails(["eval", Fixtures.vitTiny, "--data", root], mentions: [path, "aspect ratio"], seconds: 60)
    }
}
