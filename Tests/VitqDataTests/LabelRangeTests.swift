import Foundation
import VitqData
import VitqFormats
import VitqModels
import VitqTestSupport
import XCTest

/// Labels the model head cannot score (outside 0…classes−1) are refused with one line naming the
/// labels' source, the first bad image and its label.
final class LabelRangeTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testNpyLabelsOutsideTheHeadAreNamed() throws {
        try NpyWriter.write(uint8s: Array(repeating: 0, count: 3 * 4 * 4 * 3), shape: [3, 4, 4, 3], to: dir + "/im.npy")
        try NpyWriter.write(int64s: [0, 12, -1], shape: [3], to: dir + "/l.npy")
        let ds = try NpyImageDataset(images: dir + "/im.npy", labels: dir + "/l.npy", preprocess: .imagenet)
        XCTAssertThrowsError(try ds.checkLabels(classes: 10)) { e in
            XCTAssertEqual("\(e)", dir + "/l.npy: label 12 of image 1 (row 1 of \(dir)/im.npy) is outside 0…9: the model has 10 classes")
        }
        XCTAssertThrowsError(try ds.checkLabels(classes: 13)) { e in
            XCTAssertTrue("\(e)".hasPrefix(dir + "/l.npy: label -1 of image 2 "), "\(e)")
        }
        try NpyWriter.write(int64s: [0, 12, 3], shape: [3], to: dir + "/ok.npy")
        XCTAssertNoThrow(try NpyImageDataset(images: dir + "/im.npy", labels: dir + "/ok.npy", preprocess: .imagenet).checkLabels(classes: 13))
    }

    func testImageFolderLabelsOutsideTheHeadNameTheClassIndexOrTheFolder() throws {
        for wnid in ["n01", "n02", "n03"] {
            try FileManager.default.createDirectory(atPath: dir + "/tree/" + wnid, withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: dir + "/tree/\(wnid)/a.jpg", contents: Data([0xFF, 0xD8, 0xFF, 0xE0]))
        }
        try "n01\nn02\nn03\n".write(toFile: dir + "/classes.txt", atomically: true, encoding: .utf8)
        let indexed = try ImageFolderDataset(root: dir + "/tree", classIndex: try ClassIndex.load(path: dir + "/classes.txt"),
                                             classIndexPath: dir + "/classes.txt", preprocess: .imagenet)
        XCTAssertThrowsError(try indexed.checkLabels(classes: 2)) { e in
            XCTAssertEqual("\(e)", dir + "/classes.txt: label 2 of image 2 (\(dir)/tree/n03/a.jpg) is outside 0…1: the model has 2 classes")
        }
        let plain = try ImageFolderDataset(root: dir + "/tree", classIndex: nil, preprocess: .imagenet)
        XCTAssertNoThrow(try plain.checkLabels(classes: 3))
        XCTAssertThrowsError(try plain.checkLabels(classes: 2)) { e in
            XCTAssertTrue("\(e)".hasPrefix(dir + "/tree: label 2 of image 2"), "\(e)")
        }
    }
}
