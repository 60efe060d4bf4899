import Foundation
import VitqData
import VitqModels
import VitqTestSupport
import XCTest

/// ImageFolder trees with nested folders, links, FIFOs and other non-images: the same images in
/// the same order as torchvision's `ImageFolder`, or one line naming the entry; never a crash,
/// a hang or a loop.
final class ImageFolderHardeningTests: XCTestCase {
    var dir = ""
    var root: String { dir + "/tree" }
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// Makes `tree/` (two classes, nested folders, links, non-image files) with PIL, and prints
    /// torchvision's `make_dataset` listing of it (its code, inlined: torchvision is not needed).
    static let treeScript = #"""
import json, os
import numpy as np
from PIL import Image
rng = np.random.default_rng(6)
def img(path, fmt):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(path, fmt)
for p in ["tree/n02/a.JPEG", "tree/n02/sub/c.jpg", "tree/n02/sub/deep/e.jpg", "tree/n01/z.jpeg", "outside/f.jpg", "outside/dir/g.jpg"]:
    img(p, "JPEG")
for p in ["tree/n02/b.png", "tree/n02/sub-x/d.Png"]:
    img(p, "PNG")
for p in ["tree/n02/notes.txt", "tree/n02/README", "tree/README.txt", "tree/n01/image.jpg.txt"]:
    open(p, "w").write("not an image")
os.symlink("../../outside/f.jpg", "tree/n02/link.jpg")
os.symlink("../../outside/dir", "tree/n02/linked")
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
classes = sorted(e.name for e in os.scandir("tree") if e.is_dir())
out = []
for i, c in enumerate(classes):
    for r, _, fnames in sorted(os.walk(os.path.join("tree", c), followlinks=True)):
        for f in sorted(fnames):
            p = os.path.join(r, f)
            if p.lower().endswith(IMG_EXTENSIONS):
                out.append([p, i])
print(json.dumps(out))
"""#

    func makeTree() throws -> [(String, Int)] {
        let listing = try PythonImages.run(Self.treeScript, in: dir)
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(listing.utf8)) as? [[Any]])
        return rows.map { (dir + "/" + ($0[0] as! String), $0[1] as! Int) }
    }

    func open() throws -> ImageFolderDataset {
        try ImageFolderDataset(root: root, classIndex: nil, preprocess: .imagenet)
    }

    /// Runs `body` on another thread and fails if it does not finish within `seconds` (a hang).
    func withinDeadline<T>(_ seconds: Double, _ body: @escaping @Sendable () throws -> T) throws -> T {
        let slot = ResultSlot<T>(), done = DispatchSemaphore(value: 0)
        Thread { slot.result = Result { try body() }; done.signal() }.start()
        guard done.wait(timeout: .now() + seconds) == .success, let r = slot.result else {
            XCTFail("did not finish within \(seconds) s")
            throw CancellationError()
        }
        return try r.get()
    }

    func assertRefused(_ needles: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let root = self.root
        let r: Result<ImageFolderDataset, Error> = try withinDeadline(20) { Result { try ImageFolderDataset(root: root, classIndex: nil, preprocess: .imagenet) } }
        guard case let .failure(e) = r else { return XCTFail("accepted", file: file, line: line) }
        let text = "\(e)"
        XCTAssertFalse(text.contains("\n"), text, file: file, line: line)
        for n in needles { XCTAssertTrue(text.contains(n), "'\(text)' should mention '\(n)'", file: file, line: line) }
    }

    func testNestedFoldersAndLinksListLikeTorchvision() throws {
        let expected = try makeTree()
        XCTAssertEqual(expected.count, 8)
        let ds = try open()
        XCTAssertEqual(ds.files, expected.map { $0.0 })
        XCTAssertEqual(ds.labels, expected.map { $0.1 })
        let out = UnsafeMutablePointer<Float>.allocate(capacity: 3 * 224 * 224)
        defer { out.deallocate() }
        for i in 0..<ds.count { try ds.load(i, into: out) }
    }

    func testHiddenEntriesAreSkipped() throws {
        _ = try makeTree()
        try "junk".write(toFile: root + "/n01/._z.jpeg", atomically: true, encoding: .utf8)
        try FileManager.default.createDirectory(atPath: root + "/.ipynb_checkpoints/x", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/n01/.cache", withIntermediateDirectories: true)
        try "junk".write(toFile: root + "/n01/.cache/y.jpg", atomically: true, encoding: .utf8)
        let ds = try open()
        XCTAssertEqual(ds.count, 8)
        XCTAssertEqual(ds.labels?.max(), 1)
    }

    func testLinkToParentIsRefusedNotWalkedForever() throws {
        _ = try makeTree()
        try FileManager.default.createSymbolicLink(atPath: root + "/n02/sub/up", withDestinationPath: "..")
        try assertRefused([root + "/n02/sub/up: leads to " + root + "/n02", "already walked"])
    }

    func testLinkToTheRootAsAClassIsRefused() throws {
        _ = try makeTree()
        try FileManager.default.createSymbolicLink(atPath: root + "/n03", withDestinationPath: ".")
        try assertRefused([root + "/n03: leads to " + root + ","])
    }

    func testFIFOIsRefusedWithoutBlocking() throws {
        _ = try makeTree()
        XCTAssertEqual(mkfifo(root + "/n01/pipe.jpg", 0o644), 0)
        try assertRefused([root + "/n01/pipe.jpg: unreadable image: is a FIFO, not a regular file"])
    }

    func testFIFOWithoutAnImageExtensionIsSkipped() throws {
        let expected = try makeTree()
        XCTAssertEqual(mkfifo(root + "/n01/pipe", 0o644), 0)
        let root = self.root
        let ds = try withinDeadline(20) { try ImageFolderDataset(root: root, classIndex: nil, preprocess: .imagenet) }
        XCTAssertEqual(ds.files, expected.map { $0.0 })
    }

    /// A file that becomes a FIFO after the scan is refused when loaded, not waited on.
    func testFIFOSwappedInAfterTheScanIsRefusedAtLoad() throws {
        _ = try makeTree()
        let ds = try open()
        let victim = ds.files[0]
        try FileManager.default.removeItem(atPath: victim)
        XCTAssertEqual(mkfifo(victim, 0o644), 0)
        let r: Result<Void, Error> = try withinDeadline(20) {
            let out = UnsafeMutablePointer<Float>.allocate(capacity: 3 * 224 * 224)
            defer { out.deallocate() }
            return Result { try ds.load(0, into: out) }
        }
        guard case let .failure(e) = r else { return XCTFail("loaded a FIFO") }
        XCTAssertEqual("\(e)", victim + ": unreadable image: is a FIFO, not a regular file")
    }

    func testClassIndexThatIsAFIFOIsRefusedWithoutBlocking() throws {
        let fifo = dir + "/classes.txt"
        XCTAssertEqual(mkfifo(fifo, 0o644), 0)
        let r: Result<[String: Int], Error> = try withinDeadline(20) { Result { try ClassIndex.load(path: fifo) } }
        guard case let .failure(e) = r else { return XCTFail("read a FIFO") }
        XCTAssertEqual("\(e)", fifo + ": bad class index: is a FIFO, not a regular file")
    }

    func testDanglingLinkIsNamed() throws {
        _ = try makeTree()
        try FileManager.default.createSymbolicLink(atPath: root + "/n01/gone.jpg", withDestinationPath: "nowhere.jpg")
        try assertRefused([root + "/n01/gone.jpg: unreadable image: cannot open: No such file or directory"])
    }

    func testImageExtensionThatIsNotJPEGOrPNGIsNamed() throws {
        _ = try makeTree()
        try PythonImages.run("from PIL import Image; Image.new('RGB', (4, 4)).save('tree/n01/x.bmp')", in: dir)
        try assertRefused([root + "/n01/x.bmp: unreadable image: not a JPEG or PNG file"])
    }

    func testClassFolderWithoutImagesIsRefusedAsTorchvisionDoes() throws {
        _ = try makeTree()
        try FileManager.default.createDirectory(atPath: root + "/n00/empty", withIntermediateDirectories: true)
        try "text".write(toFile: root + "/n00/readme.txt", atomically: true, encoding: .utf8)
        try assertRefused([root + "/n00: no image files in this class folder"])
    }
}

/// The result of work done on another thread.
final class ResultSlot<T>: @unchecked Sendable { var result: Result<T, Error>? }
