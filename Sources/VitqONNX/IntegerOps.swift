import Foundation
import VitqQuant

/// The integer engine's arithmetic spelled in ONNX operators (`--format integer`), each step the
/// same IEEE operation vitq's kernels perform (Docs/ALGORITHMS.md §6e):
/// - quantize: q = clamp(rne(x · fl(1/s)) + z, qmin, qmax), a multiply by the float reciprocal
///   (not QuantizeLinear's division), `Round` (half to even), `Clip`;
/// - products: `MatMulInteger` on int8/uint8 operands (exact int32 sums);
/// - epilogue: vitq's single-rounding fma(float(acc), scale, bias), formed in double (the product
///   of two floats is exact there) and rounded to float once.
struct IntegerOps {
    let b: GraphBuilder

    /// Float constants broadcast over the last axis (`[n]`) or, for per-head values, `[1, H, 1, 1]`.
    func perHead(_ name: String, _ v: [Float]) -> String { b.floats(name, v, dims: [1, v.count, 1, 1]) }

    /// The integer codes of `x` on `scheme`'s grid with step `scale` and zero point `zero`
    /// (scalars, or per-head `[1, H, 1, 1]` names), as int8 (signed grids) or uint8.
    func quantize(_ x: String, inverse: String, zero: String?, scheme: QuantScheme, name: String) -> String {
        var t = b.op("Round", [b.op("Mul", [x, inverse], name + "_scaled")], name + "_rounded")
        if let zero { t = b.op("Add", [t, zero], name + "_shifted") }
        let c = b.op("Clip", [t, b.scalar(name + "_qmin", Float(scheme.qmin)), b.scalar(name + "_qmax", Float(scheme.qmax))], name + "_clipped")
        return cast(c, to: scheme.signed ? .int8 : .uint8, name + "_q")
    }

    func cast(_ x: String, to type: GraphBuilder.ElementType, _ name: String) -> String {
        b.op("Cast", [x], name, [Attr.int("to", Int(type.rawValue))])
    }

    /// fma(x, scale, bias) rounded once: `x` float (exact integers or values), `scale` and `bias`
    /// float initializers of the broadcast shape, as doubles.
    func fma(_ x: String, scale: [Float], bias: [Float]?, dims: [Int], name: String) -> String {
        let xd = cast(x, to: .double, name + "_d")
        let s = b.doubles(name + "_scale", scale.map(Double.init), dims: dims)
        var y = b.op("Mul", [xd, s], name + "_prod")
        if let bias { y = b.op("Add", [y, b.doubles(name + "_bias", bias.map(Double.init), dims: dims)], name + "_sum") }
        return cast(y, to: .float, name)
    }

    /// fma(x, y, bias) of two computed float tensors (broadcasting) and a constant bias, rounded once.
    func fma(_ x: String, _ y: String, bias: [Float]?, dims: [Int], name: String) -> String {
        var p = b.op("Mul", [cast(x, to: .double, name + "_xd"), cast(y, to: .double, name + "_yd")], name + "_prod")
        if let bias { p = b.op("Add", [p, b.doubles(name + "_bias", bias.map(Double.init), dims: dims)], name + "_sum") }
        return cast(p, to: .float, name)
    }

    /// A twin quantizer's two integer parts of `x` (PTQ4ViT; ``TwinQuant``): `lo` on Δ1's grid and
    /// `hi` on Δ2 = Δ1·2^shift's, each int8, zero where the other range holds the value.
    /// `inv1`/`inv2` are scalars or per-head tensors of fl(1/Δ1), fl(1/Δ2). With `cast: false`
    /// the parts stay float (the QDQ export rescales them).
    func twinParts(_ x: String, kind: TwinKind, inv1: String, inv2: String, qmax: Int, name: String, cast toCodes: Bool = true) -> (lo: String, hi: String) {
        let zero = b.scalar(name + "_zero", 0), top = b.scalar(name + "_top", Float(qmax))
        let hiValue = b.op("Clip", [b.op("Round", [b.op("Mul", [x, inv2], name + "_x2")], name + "_r2"), zero, top], name + "_hi_value")
        let inFirst: String, lo: String
        switch kind {
        case .gelu:
            // x < 0: lo = −clamp(rne(−x·inv1), 0, qmax); otherwise the value is in R2.
            inFirst = b.op("Less", [x, zero], name + "_negative")
            let m = b.op("Clip", [b.op("Round", [b.op("Mul", [b.op("Neg", [x], name + "_neg"), inv1], name + "_x1")], name + "_r1"), zero, top], name + "_lo_mag")
            lo = b.op("Where", [inFirst, b.op("Neg", [m], name + "_lo_value"), zero], name + "_lo")
        case .softmax:
            // t = rne(x·inv1); t ≤ qmax: lo = max(t, 0); otherwise R2.
            let t = b.op("Round", [b.op("Mul", [x, inv1], name + "_x1")], name + "_r1")
            inFirst = b.op("LessOrEqual", [t, top], name + "_first")
            lo = b.op("Where", [inFirst, b.op("Max", [t, zero], name + "_lo_value"), zero], name + "_lo")
        }
        let hi = b.op("Where", [inFirst, zero, hiValue], name + "_hi")
        guard toCodes else { return (lo, hi) }
        return (cast(lo, to: .int8, name + "_lo_q"), cast(hi, to: .int8, name + "_hi_q"))
    }

    /// acc_lo + acc_hi · 2^shift (int32 products), exact in double, rounded to float once (as
    /// vitq's combine). `pow2` is a double scalar or per-head tensor of 2^shift.
    func twinCombine(lo: String, hi: String, pow2: String, name: String) -> String {
        let l = cast(lo, to: .double, name + "_lo_d"), h = cast(hi, to: .double, name + "_hi_d")
        return cast(b.op("Add", [b.op("Mul", [h, pow2], name + "_hi_scaled"), l], name + "_sum"), to: .float, name)
    }
}
