/// An 8-bit RGB image, row-major, interleaved (HWC).
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// width × height × 3 bytes.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "\(pixels.count) bytes for \(width)×\(height) RGB")
        self.width = width; self.height = height; self.pixels = pixels
    }
}
