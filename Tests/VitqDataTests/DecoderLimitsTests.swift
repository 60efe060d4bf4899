import Foundation
import VitqData
import VitqFormats
import VitqModels
import VitqTestSupport
import XCTest

/// JPEGs that PIL refuses (truncated) or that ask for huge resize targets (extreme aspect
/// ratios) give one line naming the file; JPEGs that PIL accepts still decode.
final class DecoderLimitsTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// full.jpg, its first half, the file without its EOI marker, with bytes after EOI, and with
    /// 3 extraneous bytes before a progressive file's second scan (a benign warning), whole and
    /// cut in its last scan;
    /// prints, per file, whether PIL's convert("RGB") raised. (Whether PIL accepts a file missing
    /// only its EOI depends on the content; vitq accepts it when every pixel decodes.)
    static let truncationScript = #"""
import io
import numpy as np
from PIL import Image
rng = np.random.default_rng(8)
Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save("full.jpg", quality=90)
d = open("full.jpg", "rb").read()
open("half.jpg", "wb").write(d[: len(d) // 2])
open("no_eoi.jpg", "wb").write(d[:-2])
open("trailing.jpg", "wb").write(d + b"trailing bytes")
Image.open("full.jpg").save("prog.jpg", quality=90, progressive=True)
p = open("prog.jpg", "rb").read()
sos = [i for i in range(len(p) - 1) if p[i : i + 2] == b"\xff\xda"]
x = p[: sos[1]] + b"\x00\x00\x00" + p[sos[1] :]
open("extraneous.jpg", "wb").write(x)
open("extraneous_half.jpg", "wb").write(x[: sos[-1] + 3 + 20])
for name in ["full", "half", "trailing", "extraneous", "extraneous_half"]:
    try:
        Image.open(name + ".jpg").convert("RGB")
        print(name, "ok")
    except OSError as e:
        print(name, "error")
"""#

    func testTruncatedJPEGIsRefusedWherePILRaises() throws {
        let pil = try PythonImages.run(Self.truncationScript, in: dir)
        XCTAssertEqual(pil, "full ok\nhalf error\ntrailing ok\nextraneous ok\nextraneous_half error\n")
        XCTAssertThrowsError(try ImageDecoder.decode(path: dir + "/half.jpg")) { e in
            XCTAssertEqual("\(e)", dir + "/half.jpg: unreadable image: truncated JPEG (libjpeg: Premature end of JPEG file)")
        }
        let full = try ImageDecoder.decode(path: dir + "/full.jpg")
        XCTAssertEqual(try ImageDecoder.decode(path: dir + "/no_eoi.jpg"), full)
        XCTAssertEqual(try ImageDecoder.decode(path: dir + "/trailing.jpg"), full)
        // libjpeg's first warning (3 extraneous bytes before a scan) used to hide the truncation.
        XCTAssertEqual(try ImageDecoder.decode(path: dir + "/extraneous.jpg").width, 64)
        XCTAssertThrowsError(try ImageDecoder.decode(path: dir + "/extraneous_half.jpg")) { e in
            XCTAssertTrue("\(e)".hasPrefix(dir + "/extraneous_half.jpg: unreadable image: truncated JPEG"), "\(e)")
        }
    }

    /// A 1×20000 JPEG of a few KB used to ask for a 256 × 5,120,000 resize (3.9 GB).
    func testExtremeAspectRatioIsRefusedBeforeTheResize() throws {
        try PythonImages.run(#"""
from PIL import Image
Image.new("RGB", (1, 20000), (90, 120, 200)).save("tall.jpg")
Image.new("RGB", (20000, 1), (90, 120, 200)).save("wide.jpg")
"""#, in: dir)
        let pre = Preprocessor(.imagenet)
        for name in ["tall", "wide"] {
            let path = dir + "/\(name).jpg"
            let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
            XCTAssertLessThan(size, 20_000)
            let img = try ImageDecoder.decode(path: path)
            XCTAssertEqual(img.width * img.height, 20000)
            XCTAssertThrowsError(try pre.resizeAndCrop(img, path: path)) { e in
                XCTAssertTrue("\(e)".hasPrefix(path + ": unreadable image: "), "\(e)")
                XCTAssertTrue("\(e)".contains("aspect ratio"), "\(e)")
                XCTAssertFalse("\(e)".contains("\n"))
            }
        }
        // Moderate aspect ratios are still resized as torchvision does.
        XCTAssertEqual(try pre.resizeTarget(width: 100, height: 3000, path: "x").height, 7680)
    }

    /// A JPEG header claiming 65000 × 65000 pixels is refused before any pixel memory is taken.
    func testJPEGBeyondPILsBombLimitIsRefused() throws {
        try PythonImages.run(#"""
from PIL import Image
Image.new("RGB", (16, 16), (1, 2, 3)).save("small.jpg")
d = bytearray(open("small.jpg", "rb").read())
i = d.index(b"\xff\xc0")
d[i + 5:i + 9] = (65000).to_bytes(2, "big") * 2
open("huge.jpg", "wb").write(bytes(d))
"""#, in: dir)
        XCTAssertThrowsError(try ImageDecoder.decode(path: dir + "/huge.jpg")) { e in
            XCTAssertEqual("\(e)", dir + "/huge.jpg: unreadable image: 65000×65000 pixels: dimensions must be positive and at most 178956970 pixels (PIL's decompression-bomb limit)")
        }
    }

    /// Both caps: the intermediate image (resized width × source height) is bounded too, and a
    /// crop_pct whose resize side does not fit is refused instead of trapping.
    func testResizeTargetCaps() throws {
        let pre = Preprocessor(.imagenet)
        XCTAssertEqual(try pre.resizeTarget(width: 1, height: 1, path: "x").width, 256)
        XCTAssertThrowsError(try pre.resizeTarget(width: 1, height: 200_000, path: "p.jpg")) { e in
            XCTAssertTrue("\(e)".hasPrefix("p.jpg: "), "\(e)")
        }
        var cfg = PreprocessConfig.imagenet
        cfg.cropPct = 1e-300
        XCTAssertThrowsError(try Preprocessor(cfg).resizeTarget(width: 10, height: 10, path: "p.jpg")) { e in
            XCTAssertTrue("\(e)".contains("crop_pct"), "\(e)")
        }
    }
}
