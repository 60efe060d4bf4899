import VitqModels

/// timm's eval transform: resize the shorter side to int(size / crop_pct) (PIL bicubic),
/// center crop, x/255, then (x − mean)/std, giving CHW floats.
public struct Preprocessor: Sendable {
    public let config: PreprocessConfig

    public init(_ config: PreprocessConfig) { self.config = config }

    /// Output size of torchvision's `Resize(shorter)` for a w×h image.
    public static func resizedSize(width w: Int, height h: Int, shorter s: Int) -> (width: Int, height: Int) {
        if w <= h { return (s, Int(Double(s * h) / Double(w))) }
        return (Int(Double(s * w) / Double(h)), s)
    }

    /// The resized and center-cropped image (`inputSize` square), still 8-bit.
    public func resizeAndCrop(_ image: RGBImage) -> RGBImage {
        let (rw, rh) = Self.resizedSize(width: image.width, height: image.height, shorter: config.resizeShorterSide)
        let resized = (rw == image.width && rh == image.height) ? image : PILResize.resize(image, width: rw, height: rh)
        return Self.centerCrop(resized, size: config.inputSize)
    }

    /// torchvision's center crop: offset int(round((side − size) / 2)) with Python's half-to-even rounding.
    public static func centerCrop(_ image: RGBImage, size: Int) -> RGBImage {
        if image.width == size && image.height == size { return image }
        let top = Int((Double(image.height - size) / 2).rounded(.toNearestOrEven))
        let left = Int((Double(image.width - size) / 2).rounded(.toNearestOrEven))
        var out = [UInt8](repeating: 0, count: size * size * 3)
        for y in 0..<size {
            let sy = y + top
            guard sy >= 0 && sy < image.height else { continue }
            for x in 0..<size {
                let sx = x + left
                guard sx >= 0 && sx < image.width else { continue }
                for c in 0..<3 { out[(y * size + x) * 3 + c] = image.pixels[(sy * image.width + sx) * 3 + c] }
            }
        }
        return RGBImage(width: size, height: size, pixels: out)
    }

    /// Normalises an `inputSize`-square HWC uint8 image into CHW floats at `dst`.
    public func normalize(_ hwc: UnsafePointer<UInt8>, into dst: UnsafeMutablePointer<Float>) {
        let s = config.inputSize, plane = s * s
        for c in 0..<3 {
            let m = config.mean[c], sd = config.std[c]
            let out = dst + c * plane
            for i in 0..<plane { out[i] = (Float(hwc[i * 3 + c]) / 255 - m) / sd }
        }
    }

    /// The full transform of a decoded image.
    public func process(_ image: RGBImage, into dst: UnsafeMutablePointer<Float>) {
        let crop = resizeAndCrop(image)
        crop.pixels.withUnsafeBufferPointer { normalize($0.baseAddress!, into: dst) }
    }
}
