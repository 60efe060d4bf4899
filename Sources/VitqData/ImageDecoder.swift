import CPNG
import CTurboJPEG
import Foundation

/// Decodes JPEG (libjpeg-turbo, accurate DCT and fancy upsampling, as PIL does) and PNG (libpng)
/// files into RGB, the way PIL's `Image.open(...).convert("RGB")` does for the common cases.
public enum ImageDecoder {
    /// The kind of image a file's first bytes announce, or nil.
    public static func sniff(_ head: [UInt8]) -> String? {
        if head.count >= 3, head[0] == 0xFF, head[1] == 0xD8, head[2] == 0xFF { return "jpeg" }
        if head.count >= 8, head[0..<8].elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return "png" }
        return nil
    }

    /// Decodes the file at `path`.
    public static func decode(path: String) throws -> RGBImage {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DataError.unreadableImage(path: path, detail: "cannot read file")
        }
        return try decode(data, path: path)
    }

    /// Decodes `data` (named `path` in errors).
    public static func decode(_ data: Data, path: String) throws -> RGBImage {
        switch sniff(Array(data.prefix(8))) {
        case "jpeg": return try decodeJPEG(data, path: path)
        case "png": return try decodePNG(data, path: path)
        default: throw DataError.unreadableImage(path: path, detail: "not a JPEG or PNG file")
        }
    }

    static func decodeJPEG(_ data: Data, path: String) throws -> RGBImage {
        guard let h = tjInitDecompress() else { throw DataError.unreadableImage(path: path, detail: "tjInitDecompress failed") }
        defer { tjDestroy(h) }
        var w: Int32 = 0, ht: Int32 = 0, sub: Int32 = 0, cs: Int32 = 0
        let bytes = [UInt8](data)
        guard tjDecompressHeader3(h, bytes, UInt(bytes.count), &w, &ht, &sub, &cs) == 0 else {
            throw DataError.unreadableImage(path: path, detail: String(cString: tjGetErrorStr2(h)))
        }
        guard cs != Int32(TJCS_CMYK.rawValue), cs != Int32(TJCS_YCCK.rawValue) else {
            throw DataError.unreadableImage(path: path, detail: "CMYK JPEGs are not supported")
        }
        guard w > 0, ht > 0, Int(w) * Int(ht) <= 1 << 28 else { throw DataError.unreadableImage(path: path, detail: "bad dimensions \(w)×\(ht)") }
        var out = [UInt8](repeating: 0, count: Int(w) * Int(ht) * 3)
        let rc = tjDecompress2(h, bytes, UInt(bytes.count), &out, w, 0, ht, Int32(TJPF_RGB.rawValue), 0)
        if rc != 0 && tjGetErrorCode(h) == Int32(TJERR_FATAL.rawValue) {
            throw DataError.unreadableImage(path: path, detail: String(cString: tjGetErrorStr2(h)))
        }
        return RGBImage(width: Int(w), height: Int(ht), pixels: out)
    }

    static func decodePNG(_ data: Data, path: String) throws -> RGBImage {
        var img = png_image()
        img.version = vitq_png_image_version
        let bytes = [UInt8](data)
        let ok = bytes.withUnsafeBytes { png_image_begin_read_from_memory(&img, $0.baseAddress, $0.count) }
        guard ok != 0 else { throw DataError.unreadableImage(path: path, detail: "libpng: " + pngMessage(&img)) }
        defer { png_image_free(&img) }
        // Read RGBA and drop alpha, as PIL's convert("RGB") does (no compositing).
        img.format = vitq_png_format_rgba
        let w = Int(img.width), h = Int(img.height)
        guard w > 0, h > 0, w * h <= 1 << 28 else { throw DataError.unreadableImage(path: path, detail: "bad dimensions \(w)×\(h)") }
        var rgba = [UInt8](repeating: 0, count: w * h * 4)
        guard png_image_finish_read(&img, nil, &rgba, 0, nil) != 0 else {
            throw DataError.unreadableImage(path: path, detail: "libpng: " + pngMessage(&img))
        }
        var rgb = [UInt8](repeating: 0, count: w * h * 3)
        for i in 0..<(w * h) {
            rgb[3 * i] = rgba[4 * i]; rgb[3 * i + 1] = rgba[4 * i + 1]; rgb[3 * i + 2] = rgba[4 * i + 2]
        }
        return RGBImage(width: w, height: h, pixels: rgb)
    }

    private static func pngMessage(_ img: inout png_image) -> String {
        withUnsafeBytes(of: &img.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }
}
