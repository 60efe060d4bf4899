import CVitqKernels
import VitqTensor

/// How many scales a quantized tensor has.
public enum Granularity: String, Codable, Sendable, CaseIterable {
    /// One scale for the whole tensor.
    case perTensor = "per_tensor"
    /// One scale per output channel (a weight's rows).
    case perChannel = "per_channel"
    /// One scale per attention head (matmul operands).
    case perHead = "per_head"
    /// One scale per row, computed at run time (linear-op inputs: ``OperandQuant/perToken(_:)``).
    case perToken = "per_token"
}

/// The integer grid: bits, signedness and, for signed grids, whether the range is narrow
/// (symmetric [-(2^(b-1)-1), 2^(b-1)-1]) or full ([-2^(b-1), 2^(b-1)-1]).
public struct QuantScheme: Codable, Equatable, Sendable {
    public var bits: Int
    public var signed: Bool
    public var narrow: Bool

    public init(bits: Int = 8, signed: Bool = true, narrow: Bool = false) {
        self.bits = bits; self.signed = signed; self.narrow = narrow
    }

    /// The smallest integer of the grid.
    public var qmin: Int32 { signed ? -(Int32(1) << (bits - 1)) + (narrow ? 1 : 0) : 0 }
    /// The largest integer of the grid.
    public var qmax: Int32 { signed ? (Int32(1) << (bits - 1)) - 1 : (Int32(1) << bits) - 1 }

    /// The scale that maps [−maxAbs, maxAbs] (signed) or [0, maxAbs] (unsigned) onto the grid with
    /// zero point 0. A zero range gives scale 1 (every value quantizes to 0 either way).
    public func symmetricScale(maxAbs: Float) -> Float {
        maxAbs > 0 && maxAbs.isFinite ? maxAbs / Float(qmax) : 1
    }

    /// Affine (scale, zero point) for the range [lo, hi], widened to include 0 so that 0 is exact.
    public func affine(min lo: Float, max hi: Float) -> (scale: Float, zero: Int32) {
        let a = Swift.min(lo, 0), b = Swift.max(hi, 0)
        guard b > a else { return (1, signed ? 0 : qmin) }
        let scale = (b - a) / Float(qmax - qmin)
        let z = (Float(qmin) - a / scale).rounded(.toNearestOrEven)
        return (scale, Int32(Swift.max(Float(qmin), Swift.min(Float(qmax), z))))
    }
}

/// The quantization of one tensor: its grid, granularity, scales and zero points.
public struct TensorQuant: Equatable, Sendable {
    public var scheme: QuantScheme
    public var granularity: Granularity
    /// One per tensor, channel or head.
    public var scales: [Float]
    /// Same count as `scales`; all zero for symmetric quantization.
    public var zeroPoints: [Int32]

    public init(scheme: QuantScheme, granularity: Granularity, scales: [Float], zeroPoints: [Int32]? = nil) {
        self.scheme = scheme; self.granularity = granularity; self.scales = scales
        self.zeroPoints = zeroPoints ?? [Int32](repeating: 0, count: scales.count)
    }

    /// The scale of weight row `row`: its own (per channel) or the only one (per tensor).
    @inline(__always) public func rowScale(_ row: Int) -> Float { scales[scales.count == 1 ? 0 : row] }

    /// Whether any zero point is non-zero.
    public var isAffine: Bool { zeroPoints.contains { $0 != 0 } }

    /// Quantizes `count` floats with scale/zero point `index` (round half to even, clamped).
    public func quantize(_ x: UnsafePointer<Float>, count: Int, index: Int = 0, into q: UnsafeMutablePointer<Int8>) {
        vitq_quantize_s8(x, q, Int64(count), scales[index], zeroPoints[index], scheme.qmin, scheme.qmax)
    }

    /// The float image of the quantizer (quantize then dequantize), in place allowed.
    public func fakeQuantize(_ x: UnsafePointer<Float>, count: Int, index: Int = 0, into y: UnsafeMutablePointer<Float>) {
        vitq_fake_quantize_f32(x, y, Int64(count), scales[index], zeroPoints[index], scheme.qmin, scheme.qmax)
    }
}
