import Foundation
import VitqData
import VitqFormats
import VitqModels
import VitqTensor
import VitqTestSupport
import XCTest

/// Decoding and timm's eval transform against PIL.
final class PreprocessingTests: XCTestCase {
    /// A 7×5 RGB image and PIL 13's BICUBIC resizes of it (made with numpy seed 5).
    static let source: [UInt8] = [168, 229, 184, 171, 238, 171, 20, 206, 245, 153, 204, 5, 37, 53, 213, 206, 192, 173, 6, 120, 63, 96, 236, 131, 118, 4, 87, 161, 124, 71, 42, 73, 237, 16, 194, 250, 10, 103, 206, 13, 143, 2, 38, 71, 133, 118, 36, 98, 196, 35, 57, 146, 50, 179, 145, 104, 206, 53, 141, 33, 181, 39, 151, 11, 180, 138, 66, 0, 165, 98, 123, 12, 144, 184, 24, 38, 129, 1, 202, 255, 85, 54, 228, 48, 127, 169, 1, 167, 109, 247, 16, 192, 78, 220, 8, 60, 189, 181, 64, 72, 8, 185, 88, 111, 191]
    static let pilDown3x4: [UInt8] = [139, 214, 172, 83, 158, 150, 76, 137, 139, 117, 80, 92, 105, 87, 186, 47, 115, 135, 68, 68, 117, 130, 113, 63, 122, 177, 73, 104, 139, 125, 142, 115, 60, 107, 112, 141]
    static let pilUp11x9Prefix: [UInt8] = [174, 226, 189, 183, 242, 180, 165, 255, 183, 36, 224, 255, 52, 217, 165, 162, 215, 0, 73, 88, 127, 78, 67, 220, 219, 192, 177, 105, 160, 109]
    static let pilUp11x9Sum = 34760
    /// The source image as PNG (RGB), and as RGBA with a random alpha channel (PIL's convert("RGB") drops it).
    static let png = "iVBORw0KGgoAAAANSUhEUgAAAAcAAAAFCAIAAAAG+GGPAAAAeUlEQVR4nAFuAJH/AKjluKvuqxTO9ZnMBSU11c7ArQZ4PwS4B8sWFtSNeJyJzejrjQ08pfkHKMMCxlsCACALI6fyaOnGgabUKyZTqJiVAAu0ikIApWJ7DJC4GCaBAcr/VTbkMAB/qQGnbfcQwE7cCDy9tUBICLlYb79sizKDd0NWrwAAAABJRU5ErkJggg=="
    static let pngRGBA = "iVBORw0KGgoAAAANSUhEUgAAAAcAAAAFCAYAAACJmvbYAAAAnElEQVR4nAGRAG7/AKjluDCr7qtEFM71ZJnMBfklNdVDzsCtKAZ4P38EuAfL/RYW1N2NeJzvic3o1euNDaI8pfn0ByjDfALGWwIIACALqyOn8kVo6ca4gabUOismU/+omJW5AAu0in9CAKWgYnsMHZC4GNAmgQGhyv9VdDbkMGQBf6kBUyjE9kRpU1cvzEju2uGtBA2LU3kUEGcGdXaBRB/7w9/6AAAAAElFTkSuQmCC"

    func testBicubicResizeEqualsPIL() {
        let img = RGBImage(width: 7, height: 5, pixels: Self.source)
        XCTAssertEqual(PILResize.resize(img, width: 3, height: 4).pixels, Self.pilDown3x4)
        let up = PILResize.resize(img, width: 11, height: 9).pixels
        XCTAssertEqual(Array(up.prefix(30)), Self.pilUp11x9Prefix)
        XCTAssertEqual(up.reduce(0) { $0 + Int($1) }, Self.pilUp11x9Sum)
    }

    func testPNGDecodesLikePIL() throws {
        for b64 in [Self.png, Self.pngRGBA] {
            let img = try ImageDecoder.decode(Data(base64Encoded: b64)!, path: "x.png")
            XCTAssertEqual(img.width, 7); XCTAssertEqual(img.height, 5)
            XCTAssertEqual(img.pixels, Self.source)
        }
    }

    func testResizeAndCropGeometryFollowsTorchvision() {
        XCTAssertEqual(Preprocessor.resizedSize(width: 500, height: 375, shorter: 248).width, 330) // int(248·500/375)
        XCTAssertEqual(Preprocessor.resizedSize(width: 375, height: 500, shorter: 248).height, 330)
        // Crop offset uses Python's round-half-to-even: (249−224)/2 = 12.5 → 12.
        var px = [UInt8](repeating: 0, count: 249 * 224 * 3)
        for x in 0..<249 { for y in 0..<224 { px[(y * 249 + x) * 3] = UInt8(x % 256) } }
        let crop = Preprocessor.centerCrop(RGBImage(width: 249, height: 224, pixels: px), size: 224)
        XCTAssertEqual(crop.pixels[0], 12)
    }

    func testJPEGsPreprocessLikePILAndClassifyLikeTheEven500Rows() throws {
        try Fixtures.require()
        let model = try VisionTransformer(path: Fixtures.vitTiny)
        let pre = Preprocessor(model.spec.preprocess)
        let index = try String(contentsOfFile: Fixtures.path("imagenet_sample/even500_index.tsv"), encoding: .utf8)
        var rowOf: [String: Int] = [:]
        for line in index.split(separator: "\n").dropFirst() {
            let c = line.split(separator: "\t")
            rowOf[String(c[3])] = Int(c[0])!
        }
        let rows = try NpyArray(path: Fixtures.even500Images, expect: .uint8)
        let dir = Fixtures.path("imagenet_sample/jpeg")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        XCTAssertEqual(files.count, 8)
        let plane = 224 * 224 * 3
        let ours = Tensor(zeros: [8, 3, 224, 224]), theirs = Tensor(zeros: [8, 3, 224, 224])
        var within2 = 0, total = 0
        for (i, f) in files.enumerated() {
            let row = try XCTUnwrap(rowOf[f], f)
            let crop = try pre.resizeAndCrop(try ImageDecoder.decode(path: dir + "/" + f), path: f)
            let ref = UnsafeBufferPointer(start: rows.bytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + row * plane, count: plane)
            for j in 0..<plane {
                total += 1
                if abs(Int(crop.pixels[j]) - Int(ref[j])) <= 2 { within2 += 1 }
            }
            crop.pixels.withUnsafeBufferPointer { pre.normalize($0.baseAddress!, into: ours.data + i * plane) }
            pre.normalize(ref.baseAddress!, into: theirs.data + i * plane)
        }
        let share = Double(within2) / Double(total)
        XCTAssertGreaterThanOrEqual(share, 0.99, "share of values within 2 levels of PIL")
        let a = model.forward(ours), b = model.forward(theirs)
        for i in 0..<8 {
            let pa = (0..<1000).max { a[i * 1000 + $0] < a[i * 1000 + $1] }
            let pb = (0..<1000).max { b[i * 1000 + $0] < b[i * 1000 + $1] }
            XCTAssertEqual(pa, pb, files[i])
        }
    }
}

final class DatasetTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func testClassIndexAcceptsBothForms() throws {
        try "n01\nn02\nn03\n".write(toFile: dir + "/plain.txt", atomically: true, encoding: .utf8)
        XCTAssertEqual(try ClassIndex.load(path: dir + "/plain.txt"), ["n01": 0, "n02": 1, "n03": 2])
        try Fixtures.require()
        let tsv = try ClassIndex.load(path: Fixtures.path("imagenet_classes.tsv"))
        XCTAssertEqual(tsv.count, 1000)
        XCTAssertEqual(tsv["n01440764"], 0)
        XCTAssertEqual(tsv["n07753592"], 954)
    }

    func testImageFolderKeepsGlobalClassIndices() throws {
        try Fixtures.require()
        for (wnid, file) in [("n07753592", "n07753592_banana.JPEG"), ("n01440764", "n01440764_tench.JPEG")] {
            try FileManager.default.createDirectory(atPath: dir + "/" + wnid, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: Fixtures.path("imagenet_sample/jpeg/" + file), toPath: dir + "/\(wnid)/\(file)")
        }
        let ds = try ImageFolderDataset(root: dir, classIndex: try ClassIndex.load(path: Fixtures.path("imagenet_classes.tsv")), preprocess: .inception)
        XCTAssertEqual(ds.labels, [0, 954])
        let plain = try ImageFolderDataset(root: dir, classIndex: nil, preprocess: .inception)
        XCTAssertEqual(plain.labels, [0, 1])
    }

    /// A file with an image extension that is not a JPEG or PNG is named; a file without one is
    /// skipped, as torchvision skips it (ImageFolderHardeningTests has the other entry kinds).
    func testNonImageFileInImageFolderIsNamed() throws {
        try FileManager.default.createDirectory(atPath: dir + "/n01", withIntermediateDirectories: true)
        try "hello".write(toFile: dir + "/n01/notes.JPG", atomically: true, encoding: .utf8)
        try "hello".write(toFile: dir + "/n01/notes.txt", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try ImageFolderDataset(root: dir, classIndex: nil, preprocess: .imagenet)) { e in
            XCTAssertEqual("\(e)", dir + "/n01/notes.JPG: unreadable image: not a JPEG or PNG file (vitq decodes JPEG and PNG only)")
        }
    }

    func testCorruptJPEGIsAClearError() throws {
        var bytes: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0]
        bytes += Array(repeating: 0x11, count: 64)
        XCTAssertThrowsError(try ImageDecoder.decode(Data(bytes), path: "bad.jpg")) { e in
            XCTAssertTrue("\(e)".hasPrefix("bad.jpg: unreadable image"), "\(e)")
        }
    }

    func testNpyImagesWithWrongLabelCountAreRejected() throws {
        try NpyWriter.write(uint8s: Array(repeating: 0, count: 2 * 4 * 4 * 3), shape: [2, 4, 4, 3], to: dir + "/im.npy")
        try NpyWriter.write(int64s: [1, 2, 3], shape: [3], to: dir + "/l.npy")
        XCTAssertThrowsError(try NpyImageDataset(images: dir + "/im.npy", labels: dir + "/l.npy", preprocess: .imagenet)) { e in
            XCTAssertTrue("\(e)".contains("l.npy"), "\(e)")
        }
    }
}
