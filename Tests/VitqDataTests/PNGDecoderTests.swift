import Foundation
import VitqData
import VitqFormats
import VitqTestSupport
import XCTest

/// PNGs made by PIL at test time in every colour mode, decoded by vitq and compared pixel for
/// pixel with PIL's own `Image.open(p).convert("RGB")` (saved by the same script as .npy).
final class PNGDecoderTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    /// Writes NAME.png and NAME.npy (PIL's RGB decoding) for each mode. The 16-bit RGB file is
    /// written by hand (PIL has no 16-bit RGB mode to save from) and then decoded by PIL.
    static let script = #"""
import io, struct, zlib
import numpy as np
from PIL import Image, PngImagePlugin
rng = np.random.default_rng(16)
def save(name, im, **kw):
    im.save(name + ".png", **kw)
    np.save(name + ".npy", np.asarray(Image.open(name + ".png").convert("RGB")))
rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
save("rgb", Image.fromarray(rgb))
save("rgba", Image.fromarray(rng.integers(0, 256, (29, 31, 4), dtype=np.uint8)))
save("one_by_one", Image.fromarray(np.array([[[200, 17, 99]]], dtype=np.uint8)))
save("grey", Image.fromarray(rng.integers(0, 256, (19, 23), dtype=np.uint8)))
save("grey_alpha", Image.fromarray(rng.integers(0, 256, (19, 23, 2), dtype=np.uint8)))
save("bilevel", Image.fromarray(rng.integers(0, 2, (13, 17), dtype=np.uint8) * 255).convert("1"))
grey16 = rng.integers(0, 700, (21, 25), dtype=np.uint16)
save("grey16", Image.fromarray(grey16))
pal = Image.fromarray(rgb).quantize(colors=37)
save("palette", pal)
pal_t = pal.copy(); pal_t.info["transparency"] = 3
save("palette_transparent", pal_t)
save("palette_4bit", Image.fromarray(rgb).quantize(colors=12), bits=4)
save("uncompressed", Image.fromarray(rgb), compress_level=0)
big = rng.integers(0, 256, (300, 401, 3), dtype=np.uint8)
save("uncompressed_big", Image.fromarray(big), compress_level=0)
info = PngImagePlugin.PngInfo(); info.add(b"gAMA", struct.pack(">I", 100000))
save("gamma_1_0", Image.fromarray(rgb), pnginfo=info)
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
rgb16 = rng.integers(0, 65536, (11, 9, 3), dtype=np.uint16)
raw = b"".join(b"\0" + rgb16[y].astype(">u2").tobytes() for y in range(11))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 9, 11, 16, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
open("rgb16.png", "wb").write(png)
np.save("rgb16.npy", np.asarray(Image.open("rgb16.png").convert("RGB")))
"""#

    static let modes = ["rgb", "rgba", "one_by_one", "grey", "grey_alpha", "bilevel", "grey16", "palette",
                        "palette_transparent", "palette_4bit", "uncompressed", "uncompressed_big", "gamma_1_0", "rgb16"]

    func testEveryModeDecodesLikePIL() throws {
        try PythonImages.run(Self.script, in: dir)
        for mode in Self.modes {
            let ref = try NpyArray(path: dir + "/\(mode).npy", expect: .uint8)
            let img = try ImageDecoder.decode(path: dir + "/\(mode).png")
            XCTAssertEqual([img.height, img.width, 3], ref.shape, mode)
            withExtendedLifetime(ref) { XCTAssertEqual(img.pixels, Array(ref.bytes), mode) }
        }
    }

    /// The decoder used to hand libpng a pointer valid only inside `withUnsafeBytes`; with the
    /// heap reused by other threads, valid files were then refused. Decode them many times in
    /// parallel, with allocations in between, and require the same pixels every time.
    func testDecodingIsStableUnderHeapChurn() throws {
        try PythonImages.run(Self.script, in: dir)
        let files = try Self.modes.map { try Data(contentsOf: URL(fileURLWithPath: dir + "/\($0).png")) }
        let refs = try Self.modes.map { mode in
            let ref = try NpyArray(path: dir + "/\(mode).npy", expect: .uint8)
            return withExtendedLifetime(ref) { Array(ref.bytes) }
        }
        let failures = Counter()
        DispatchQueue.concurrentPerform(iterations: 4) { t in
            for round in 0..<40 {
                for (i, data) in files.enumerated() {
                    var churn = [[UInt8]]()
                    for k in 0..<8 { churn.append([UInt8](repeating: UInt8((round + k + t) & 0xFF), count: 1000 + 997 * k)) }
                    let pixels = try? ImageDecoder.decode(data, path: Self.modes[i]).pixels
                    if pixels != refs[i] { failures.add() }
                    churn.removeAll()
                }
            }
        }
        XCTAssertEqual(failures.value, 0)
    }

    func testTruncatedAndOversizedPNGsAreOneLine() throws {
        try PythonImages.run(Self.script, in: dir)
        let good = try Data(contentsOf: URL(fileURLWithPath: dir + "/rgb.png"))
        XCTAssertThrowsError(try ImageDecoder.decode(good.prefix(good.count / 2), path: "half.png")) { e in
            XCTAssertTrue("\(e)".hasPrefix("half.png: unreadable image: libpng: "), "\(e)")
        }
        // An IHDR claiming 20000 × 20000 pixels, beyond PIL's decompression-bomb limit.
        try PythonImages.run(#"""
import struct, zlib
def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
open("huge.png", "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
"""#, in: dir)
        XCTAssertThrowsError(try ImageDecoder.decode(path: dir + "/huge.png")) { e in
            XCTAssertTrue("\(e)".hasPrefix(dir + "/huge.png: unreadable image:"), "\(e)")
            XCTAssertFalse("\(e)".contains("\n"))
        }
    }
}

/// A thread-safe count.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}
