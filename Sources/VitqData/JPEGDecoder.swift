import CTurboJPEG
import Foundation

/// JPEG through libjpeg-turbo's TurboJPEG API, as PIL decodes it (accurate DCT, fancy upsampling).
enum JPEGDecoder {
    /// libjpeg's JWRN_JPEG_EOF text: the data ended before the EOI marker. libjpeg-turbo only
    /// warns (and fills missing pixels with grey); PIL raises "image file is truncated", so vitq
    /// refuses, unless only the EOI marker itself is missing (see `decode`). Other warnings
    /// (extraneous bytes before a marker, …) are decoded through, as PIL does.
    static let truncationWarning = "Premature end of JPEG file"

    static func decode(_ data: Data, path: String) throws -> RGBImage {
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
        try ImageDecoder.checkDimensions(width: Int(w), height: Int(ht), path: path)
        var out = [UInt8](repeating: 0, count: Int(w) * Int(ht) * 3)
        guard let warning = try decompress(h, bytes, into: &out, width: w, height: ht, path: path) else {
            return RGBImage(width: Int(w), height: Int(ht), pixels: out)
        }
        // TurboJPEG reports only libjpeg's first warning, so a benign one (extraneous bytes
        // before a marker) can hide a later premature end. A file that ends with its EOI marker
        // was read to the end: its warnings are benign unless the first is the truncation.
        let endsWithEOI = bytes.suffix(2) == [0xFF, 0xD9]
        if endsWithEOI && !warning.contains(truncationWarning) {
            return RGBImage(width: Int(w), height: Int(ht), pixels: out)
        }
        // A file whose only missing part is the final EOI marker holds every pixel (PIL accepts
        // some such files, depending on where its reads end): decode again with the marker
        // appended, and accept only a decode without any warning.
        if !endsWithEOI, try decompress(h, bytes + [0xFF, 0xD9], into: &out, width: w, height: ht, path: path) == nil {
            return RGBImage(width: Int(w), height: Int(ht), pixels: out)
        }
        throw DataError.unreadableImage(path: path, detail: "truncated JPEG (libjpeg: \(warning))")
    }

    /// Decodes `bytes` into `out` as RGB; returns libjpeg's first warning, if any. Errors throw.
    static func decompress(_ h: tjhandle, _ bytes: [UInt8], into out: inout [UInt8], width: Int32, height: Int32, path: String) throws -> String? {
        guard tjDecompress2(h, bytes, UInt(bytes.count), &out, width, 0, height, Int32(TJPF_RGB.rawValue), 0) != 0 else { return nil }
        let message = String(cString: tjGetErrorStr2(h))
        if tjGetErrorCode(h) == Int32(TJERR_FATAL.rawValue) {
            throw DataError.unreadableImage(path: path, detail: message)
        }
        return message
    }
}
