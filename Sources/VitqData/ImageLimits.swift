/// The sizes vitq accepts for an input image, checked before memory is allocated for it.
public enum ImageLimits {
    /// Decoded pixels (width × height) of one image: PIL's `DecompressionBombError` threshold,
    /// 2 × `Image.MAX_IMAGE_PIXELS` (89,478,485), so vitq refuses what timm's PIL loader refuses.
    public static let maxDecodedPixels = 178_956_970
    /// Pixels of the resize target (the shorter side at `int(size / crop_pct)`, the other side in
    /// proportion) and of the intermediate image of the two-pass resize. The resize target grows
    /// with the aspect ratio, not the file: a 1×20000 JPEG of 5.6 KB asks for 248 × 4,960,000.
    /// 2^25 pixels (96 MiB of RGB) leaves room for panoramas beyond 1:500 at ImageNet sizes.
    public static let maxResizePixels = 1 << 25
    /// Bytes of one image file (read whole into memory).
    public static let maxFileBytes = 1 << 30
}
