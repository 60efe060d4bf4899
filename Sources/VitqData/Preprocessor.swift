
/// timm's eval transform: resize the shorter side to int(size / crop_pct) (PIL bicubic),
/// center crop, x/255, then (x − mean)/std, giving CHW floats. Resize targets that an extreme
/// aspect ratio makes huge are refused (`resizeTarget`), naming the file.
public struct Preprocessor: Sendable {
    public let config: PreprocessConfig

    public init(_ config: PreprocessConfig) { self.config = config }

    /// Output size of torchvision's `Resize(shorter)` for a w×h image.
    public static func resizedSize(width w: Int, height h: Int, shorter s: Int) -> (width: Int, height: Int) {
        if w <= h { return (s, Int(Double(s * h) / Double(w))) }
        return (Int(Double(s * w) / Double(h)), s)
    }

    /// The resize target of a `width` × `height` image, checked: the shorter side
    /// int(inputSize / crop_pct) is computed without trapping, and the target and the
    /// intermediate image of the two-pass resize (PIL resizes the width first, into
    /// target width × source height) must stay within `ImageLimits.maxResizePixels`.
    /// Errors name `path`.
    public func resizeTarget(width w: Int, height h: Int, path: String) throws -> (width: Int, height: Int) {
        let side = (Double(config.inputSize) / config.cropPct).rounded(.down)
        guard side.isFinite, side >= Double(config.inputSize), side <= Double(ImageLimits.maxResizePixels) else {
            throw DataError.badDataset(path: path, detail: "resize side int(\(config.inputSize) / crop_pct \(config.cropPct)) is out of range")
        }
        guard w > 0, h > 0 else { throw DataError.unreadableImage(path: path, detail: "\(w)×\(h) image has no pixels") }
        let s = Double(side)
        let long = (s * Double(max(w, h)) / Double(min(w, h))).rounded(.towardZero)
        let limit = ImageLimits.maxResizePixels
        guard long <= Double(limit) else {
            throw DataError.unreadableImage(path: path, detail: "\(w)×\(h) image: resize target beyond \(limit) pixels (aspect ratio too extreme)")
        }
        let (rw, rh) = Self.resizedSize(width: w, height: h, shorter: Int(side))
        let (target, o1) = rw.multipliedReportingOverflow(by: rh)
        let (intermediate, o2) = rw.multipliedReportingOverflow(by: h)
        guard !o1, !o2, target <= limit, rw == w || intermediate <= limit else {
            throw DataError.unreadableImage(path: path, detail: "\(w)×\(h) image: resize target \(rw)×\(rh) (or the \(rw)×\(h) intermediate) is beyond \(limit) pixels (aspect ratio too extreme)")
        }
        return (rw, rh)
    }

    /// The resized and center-cropped image (`inputSize` square), still 8-bit. Errors name `path`.
    public func resizeAndCrop(_ image: RGBImage, path: String) throws -> RGBImage {
        let (rw, rh) = try resizeTarget(width: image.width, height: image.height, path: path)
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

    /// The full transform of a decoded image (named `path` in errors).
    public func process(_ image: RGBImage, path: String, into dst: UnsafeMutablePointer<Float>) throws {
        let crop = try resizeAndCrop(image, path: path)
        crop.pixels.withUnsafeBufferPointer { normalize($0.baseAddress!, into: dst) }
    }
}
