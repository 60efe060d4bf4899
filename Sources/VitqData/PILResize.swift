/// PIL's `Image.resize(..., BICUBIC)` for 8-bit RGB, reproduced step by step so that vitq's
/// preprocessing matches timm's (torchvision on PIL) to the level.
///
/// As PIL does (Resample.c): the filter is the bicubic kernel with a = -0.5 and support 2,
/// stretched by the scale factor when downscaling (antialiasing); each output pixel's weights
/// are normalised in double precision, then converted to fixed point with 22 fractional bits;
/// the horizontal pass runs first into an 8-bit intermediate image (rounded and clipped), then
/// the vertical pass.
public enum PILResize {
    static let precisionBits = 32 - 8 - 2

    static func bicubic(_ x: Double) -> Double {
        let a = -0.5
        let x = abs(x)
        if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
        if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
        return 0
    }

    /// Fixed-point weights for resampling `inSize` samples to `outSize`: per output sample the
    /// first input index, the tap count and `ksize` weights.
    struct Coefficients {
        var ksize: Int
        var bounds: [(min: Int, count: Int)]
        var weights: [Int32]
    }

    static func coefficients(inSize: Int, outSize: Int) -> Coefficients {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1.0)
        let support = 2.0 * filterScale
        let ksize = Int(support.rounded(.up)) * 2 + 1
        var bounds: [(Int, Int)] = []
        var weights = [Int32](repeating: 0, count: outSize * ksize)
        var k = [Double](repeating: 0, count: ksize)
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            let ss = 1.0 / filterScale
            var xmin = Int(center - support + 0.5)
            if xmin < 0 { xmin = 0 }
            var xmax = Int(center + support + 0.5)
            if xmax > inSize { xmax = inSize }
            xmax -= xmin
            var ww = 0.0
            for x in 0..<xmax {
                let w = bicubic((Double(x + xmin) - center + 0.5) * ss)
                k[x] = w
                ww += w
            }
            for x in 0..<xmax where ww != 0 { k[x] /= ww }
            for x in 0..<xmax {
                let v = k[x] * Double(1 << precisionBits)
                weights[xx * ksize + x] = Int32(v < 0 ? (v - 0.5).rounded(.towardZero) : (v + 0.5).rounded(.towardZero))
            }
            bounds.append((xmin, xmax))
        }
        return Coefficients(ksize: ksize, bounds: bounds, weights: weights)
    }

    @inline(__always)
    static func clip8(_ v: Int32) -> UInt8 {
        if v >= Int32(1 << precisionBits) << 8 { return 255 }
        if v <= 0 { return 0 }
        return UInt8(v >> Int32(precisionBits))
    }

    /// `image` resized to `width` × `height`.
    public static func resize(_ image: RGBImage, width: Int, height: Int) -> RGBImage {
        var current = image
        if width != image.width {
            let c = coefficients(inSize: image.width, outSize: width)
            var out = [UInt8](repeating: 0, count: width * image.height * 3)
            image.pixels.withUnsafeBufferPointer { src in
                for y in 0..<image.height {
                    let row = y * image.width * 3
                    for xx in 0..<width {
                        let (xmin, n) = c.bounds[xx]
                        let kbase = xx * c.ksize
                        for ch in 0..<3 {
                            var ss = Int32(1 << (precisionBits - 1))
                            for x in 0..<n { ss &+= Int32(src[row + (x + xmin) * 3 + ch]) &* c.weights[kbase + x] }
                            out[(y * width + xx) * 3 + ch] = clip8(ss)
                        }
                    }
                }
            }
            current = RGBImage(width: width, height: image.height, pixels: out)
        }
        if height != current.height {
            let c = coefficients(inSize: current.height, outSize: height)
            var out = [UInt8](repeating: 0, count: width * height * 3)
            let rowLen = width * 3
            current.pixels.withUnsafeBufferPointer { src in
                for yy in 0..<height {
                    let (ymin, n) = c.bounds[yy]
                    let kbase = yy * c.ksize
                    for i in 0..<rowLen {
                        var ss = Int32(1 << (precisionBits - 1))
                        for y in 0..<n { ss &+= Int32(src[(y + ymin) * rowLen + i]) &* c.weights[kbase + y] }
                        out[yy * rowLen + i] = clip8(ss)
                    }
                }
            }
            current = RGBImage(width: width, height: height, pixels: out)
        }
        return current
    }
}
