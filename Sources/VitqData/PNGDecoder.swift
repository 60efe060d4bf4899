import CPNG
import Foundation

/// PNG through libpng's low-level reader (`vitq_png_reader` in the CPNG shim), converted to RGB
/// as PIL's `convert("RGB")` does: no gamma or colour-profile transform, alpha dropped (not
/// composited), palette and 1/2/4-bit grey expanded, 16-bit RGB(A) and grey+alpha reduced to
/// their high byte, and 16-bit grey (PIL's mode "I;16") clipped to 255.
enum PNGDecoder {
    static func decode(_ data: Data, path: String) throws -> RGBImage {
        // libpng reads from `raw` across several calls, so every call stays inside this one
        // closure: the pointer is valid only here (it used to escape, and libpng read freed memory).
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> RGBImage in
            guard let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
                throw DataError.unreadableImage(path: path, detail: "empty file")
            }
            guard let r = vitq_png_open(base, raw.count) else {
                throw DataError.unreadableImage(path: path, detail: "libpng: out of memory")
            }
            defer { vitq_png_close(r) }
            guard vitq_png_read_header(r, UInt32(ImageLimits.maxDecodedPixels)) == 0 else {
                throw DataError.unreadableImage(path: path, detail: "libpng: " + message(r))
            }
            let w = Int(r.pointee.width), h = Int(r.pointee.height)
            let channels = Int(r.pointee.channels), depth = Int(r.pointee.bit_depth), rowBytes = r.pointee.rowbytes
            try ImageDecoder.checkDimensions(width: w, height: h, path: path)
            let (total, overflow) = rowBytes.multipliedReportingOverflow(by: h)
            guard (1...4).contains(channels), depth == 8 || depth == 16, rowBytes == w * channels * depth / 8, !overflow else {
                throw DataError.unreadableImage(path: path, detail: "libpng: unexpected layout (\(channels) channels, \(depth) bits)")
            }
            var samples = [UInt8](repeating: 0, count: total)
            let ok = samples.withUnsafeMutableBufferPointer { vitq_png_read_image(r, $0.baseAddress) }
            guard ok == 0 else { throw DataError.unreadableImage(path: path, detail: "libpng: " + message(r)) }
            let clipGrey16 = depth == 16 && r.pointee.color_type == PNG_COLOR_TYPE_GRAY
            return RGBImage(width: w, height: h, pixels: toRGB(samples, pixels: w * h, channels: channels, depth: depth, clipGrey16: clipGrey16))
        }
    }

    /// RGB bytes from expanded samples: grey is replicated, alpha dropped; 16-bit samples (big
    /// endian) keep their high byte, or, for 16-bit grey, are clipped to 255.
    static func toRGB(_ s: [UInt8], pixels n: Int, channels: Int, depth: Int, clipGrey16: Bool) -> [UInt8] {
        var rgb = [UInt8](repeating: 0, count: n * 3)
        let bytes = depth / 8, stride = channels * bytes
        let colour = channels >= 3
        for i in 0..<n {
            let p = i * stride
            if clipGrey16 {
                let v = Int(s[p]) << 8 | Int(s[p + 1])
                let g = UInt8(min(v, 255))
                rgb[3 * i] = g; rgb[3 * i + 1] = g; rgb[3 * i + 2] = g
            } else if colour {
                rgb[3 * i] = s[p]; rgb[3 * i + 1] = s[p + bytes]; rgb[3 * i + 2] = s[p + 2 * bytes]
            } else {
                rgb[3 * i] = s[p]; rgb[3 * i + 1] = s[p]; rgb[3 * i + 2] = s[p]
            }
        }
        return rgb
    }

    private static func message(_ r: UnsafeMutablePointer<vitq_png_reader>) -> String {
        withUnsafeBytes(of: &r.pointee.message) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }
}
