import Foundation

/// A seeded SplitMix64 generator with uniform and normal samplers: the one source of
/// reproducible randomness in vitq (synthetic weights, benchmark inputs, tests).
public struct SeededRandom: Sendable, RandomNumberGenerator {
    var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    public mutating func uniform() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// Uniform in [-scale, scale).
    public mutating func symmetric(_ scale: Float) -> Float { Float(uniform() * 2 - 1) * scale }

    /// Standard normal (Box–Muller).
    public mutating func normal() -> Double {
        let u1 = max(uniform(), 1e-300), u2 = uniform()
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }
}
