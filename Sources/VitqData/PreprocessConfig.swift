import Foundation

/// The timm eval transform's parameters.
public struct PreprocessConfig: Codable, Equatable, Sendable {
    /// Side of the square network input.
    public var inputSize: Int = 224
    /// Shorter side is resized to int(inputSize / cropPct) before the center crop.
    public var cropPct: Double = 0.875
    public var mean: [Float] = [0.485, 0.456, 0.406]
    public var std: [Float] = [0.229, 0.224, 0.225]
    /// Resize filter; only "bicubic" (PIL's antialiased bicubic) is implemented.
    public var interpolation: String = "bicubic"

    public init() {}

    /// ImageNet mean/std, crop 0.875 (DeiT and most timm models).
    public static let imagenet = PreprocessConfig()
    /// mean = std = 0.5, crop 0.9 (Google AugReg ViTs).
    public static var inception: PreprocessConfig {
        var p = PreprocessConfig(); p.mean = [0.5, 0.5, 0.5]; p.std = [0.5, 0.5, 0.5]; p.cropPct = 0.9; return p
    }

    /// The resize target of the shorter side: int(inputSize / cropPct), as timm computes it.
    public var resizeShorterSide: Int { Int((Double(inputSize) / cropPct).rounded(.down)) }
}
