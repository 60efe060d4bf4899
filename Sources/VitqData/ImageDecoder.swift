import Foundation

/// Decodes JPEG (libjpeg-turbo, accurate DCT and fancy upsampling, as PIL does) and PNG (libpng)
/// files into RGB, the way PIL's `Image.open(...).convert("RGB")` does.
///
/// Refused, with one line naming the file: anything but a regular file, files over
/// `ImageLimits.maxFileBytes`, images over `ImageLimits.maxDecodedPixels`, truncated JPEGs and
/// PNGs (PIL raises "image file is truncated"), and CMYK JPEGs.
public enum ImageDecoder {
    /// The kind of image a file's first bytes announce, or nil.
    public static func sniff(_ head: [UInt8]) -> String? {
        if head.count >= 3, head[0] == 0xFF, head[1] == 0xD8, head[2] == 0xFF { return "jpeg" }
        if head.count >= 8, head[0..<8].elementsEqual([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return "png" }
        return nil
    }

    /// Decodes the file at `path` (a regular file; opening never blocks).
    public static func decode(path: String) throws -> RGBImage {
        try decode(Data(RegularFile.read(path)), path: path)
    }

    /// Decodes `data` (named `path` in errors).
    public static func decode(_ data: Data, path: String) throws -> RGBImage {
        switch sniff(Array(data.prefix(8))) {
        case "jpeg": return try JPEGDecoder.decode(data, path: path)
        case "png": return try PNGDecoder.decode(data, path: path)
        default: throw DataError.unreadableImage(path: path, detail: "not a JPEG or PNG file")
        }
    }

    /// Refuses a `width` × `height` image beyond `ImageLimits.maxDecodedPixels`.
    static func checkDimensions(width: Int, height: Int, path: String) throws {
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        guard width > 0, height > 0, !overflow, pixels <= ImageLimits.maxDecodedPixels else {
            throw DataError.unreadableImage(path: path, detail: "\(width)×\(height) pixels: dimensions must be positive and at most \(ImageLimits.maxDecodedPixels) pixels (PIL's decompression-bomb limit)")
        }
    }
}
