import Foundation
import VitqModels
import VitqQuant
import VitqTensor

/// The pieces every exported model is made of, float or quantized as the quantized file says:
/// linear products (``product(_:_:_:)``), attention (``attend(_:_:_:heads:headDim:block:scoreBias:)``),
/// LayerNorm and GELU. `--format integer` spells vitq's integer arithmetic (``IntegerOps``),
/// `--format qdq` QuantizeLinear/DequantizeLinear pairs (ExportOps+QDQ.swift).
struct ExportOps {
    let linear: [String: LinearSlot]
    let attention: [String: AttentionQuant]
    let opset: Int
    let format: ExportFormat
    let b: GraphBuilder
    let q: IntegerOps

    /// Declares the graph input `pixel_values` [batch, C, H, W] and returns its patches
    /// [batch, patches, C·p·p], each in (c, ky, kx) order (the order of timm's flattened
    /// patch_embed.proj weight), so that the patch embedding (a Conv with kernel = stride) is a
    /// linear product to which every quantizer, per-token inputs included, applies.
    func imagePatches(channels: Int, imageSize: Int, patchSize p: Int) -> String {
        let g = Int64(imageSize / p), c = Int64(channels), p64 = Int64(p)
        b.input("pixel_values", .float, [.symbol("batch"), .size(channels), .size(imageSize), .size(imageSize)])
        let grid = b.op("Reshape", ["pixel_values", b.int64s("patch_grid", [0, c, g, p64, g, p64])], "patch_grid_view")
        let moved = b.op("Transpose", [grid], "patch_order", [Attr.ints("perm", [0, 2, 4, 1, 3, 5])])
        return b.op("Reshape", [moved, b.int64s("patches_shape", [0, g * g, c * p64 * p64])], "patches")
    }

    func layerNorm(_ x: String, _ n: LayerNorm, _ name: String) -> String {
        b.op("LayerNormalization", [x, b.floats(name + ".weight", n.weight.array), b.floats(name + ".bias", n.bias.array)], name,
             [Attr.int("axis", -1), Attr.float("epsilon", n.eps)])
    }

    /// GELU with the exact erf: 0.5·x·(1 + erf(x·0.70710678)), vitq's reference order.
    func gelu(_ x: String, _ name: String) -> String {
        let erf = b.op("Erf", [b.op("Mul", [x, b.scalar(name + "_rsqrt2", 0.70710678)], name + "_scaled")], name + "_erf")
        return b.op("Mul", [b.op("Mul", [x, b.scalar(name + "_half", 0.5)], name + "_halved"), b.op("Add", [erf, b.scalar(name + "_one", 1)], name + "_erf1")], name)
    }

    /// The linear op `name` applied to `x` [..., in]: float, or as the integer engine computes it.
    func product(_ x: String, _ name: String, _ op: any LinearOp) throws -> String {
        switch linear[name] {
        case let .quantized(w, input)?:
            return format == .qdq ? try qdqLinear(x, name, w, input) : try integerLinear(x, name, w, input)
        case let .float(l)?:
            return floatLinear(x, name, l)
        case nil:
            guard let l = op as? Linear else { throw ExportError("\(name): not a float linear op") }
            return floatLinear(x, name, l)
        }
    }

    func floatLinear(_ x: String, _ name: String, _ l: Linear) -> String {
        let wt = Self.transposed(l.weight.array, rows: l.outFeatures, cols: l.inFeatures)
        let y = b.op("MatMul", [x, b.floats(name + ".weight_t", wt, dims: [l.inFeatures, l.outFeatures])], name + "_matmul")
        guard let bias = l.bias else { return y }
        return b.op("Add", [y, b.floats(name + ".bias", bias.array)], name)
    }

    func integerLinear(_ x: String, _ name: String, _ w: QuantizedWeight, _ input: OperandQuant) throws -> String {
        let out = w.outFeatures
        let wt = b.int8s(name + ".weight_t", Self.transposed(w.values, rows: out, cols: w.inFeatures), dims: [w.inFeatures, out])
        let weightScales = (0..<out).map { w.scale($0) }
        let bias = w.bias?.array
        switch input {
        case let .uniform(t):
            guard t.scales.count == 1 else { throw ExportError("\(name): input quantizer with \(t.scales.count) scales (the integer export takes per-tensor inputs)") }
            let s = t.scales[0], z = t.zeroPoints[0]
            let codes = q.quantize(x, inverse: b.scalar(name + ".input_inverse", 1 / s), zero: z != 0 ? b.scalar(name + ".input_zero", Float(z)) : nil,
                                   scheme: t.scheme, name: name + ".input")
            var operands = [codes, wt]
            if z != 0 {
                operands.append(t.scheme.signed ? b.int8s(name + ".input_zero_point", [Int8(z)], dims: [])
                                                : b.initializer(name + ".input_zero_point", .uint8, dims: [], raw: Data([UInt8(z)])))
            }
            let acc = b.op("MatMulInteger", operands, name + "_acc")
            return q.fma(q.cast(acc, to: .float, name + "_accf"), scale: weightScales.map { s * $0 }, bias: bias, dims: [out], name: name)
        case let .perToken(scheme):
            // Codes rne(x · fl(1/Δ_r)) on each row's step (``perTokenStep``).
            let step = perTokenStep(x, scheme: scheme, name: name + ".input")
            let inverse = b.op("Div", [b.scalar(name + ".input_one", 1), step], name + ".input_inverse")
            let codes = q.quantize(x, inverse: inverse, zero: nil, scheme: scheme, name: name + ".input")
            let acc = b.op("MatMulInteger", [codes, wt], name + "_acc")
            let v = b.op("Mul", [q.cast(acc, to: .float, name + "_accf"), b.floats(name + ".weight_scale", weightScales)], name + "_v")
            return q.fma(v, step, bias: bias, dims: [out], name: name)
        case let .twin(ts):
            guard ts.count == 1, let t = ts.first else { throw ExportError("\(name): twin input with \(ts.count) quantizers (the integer export takes one per linear op)") }
            let d2 = t.delta2
            let parts = q.twinParts(x, kind: t.kind, inv1: b.scalar(name + ".input_inverse1", 1 / t.delta1), inv2: b.scalar(name + ".input_inverse2", 1 / d2),
                                    qmax: t.maxMagnitude, name: name + ".input")
            let lo = b.op("MatMulInteger", [parts.lo, wt], name + "_acc_lo"), hi = b.op("MatMulInteger", [parts.hi, wt], name + "_acc_hi")
            let acc = q.twinCombine(lo: lo, hi: hi, pow2: b.doubles(name + ".input_pow2", [Double(sign: .plus, exponent: t.shift, significand: 1)], dims: []), name: name + "_accf")
            return q.fma(acc, scale: weightScales.map { t.delta1 * $0 }, bias: bias, dims: [out], name: name)
        }
    }

    /// ReduceMax over the last axis, keeping it (the attribute form before opset 18, the input form after).
    func reduceMaxLast(_ x: String, _ name: String) -> String {
        if opset >= 18 { return b.op("ReduceMax", [x, b.int64s(name + "_axes", [-1])], name, [Attr.int("keepdims", 1)]) }
        return b.op("ReduceMax", [x], name, [Attr.ints("axes", [-1]), Attr.int("keepdims", 1)])
    }

    /// The mean over axis 1, dropping it (the attribute form before opset 18, the input form after).
    func reduceMeanAxis1(_ x: String, _ name: String) -> String {
        if opset >= 18 { return b.op("ReduceMean", [x, b.int64s(name + "_axes", [1])], name, [Attr.int("keepdims", 0)]) }
        return b.op("ReduceMean", [x], name, [Attr.ints("axes", [1]), Attr.int("keepdims", 0)])
    }

    static func transposed<T>(_ v: [T], rows: Int, cols: Int) -> [T] {
        var out = v
        for r in 0..<rows { for c in 0..<cols { out[c * rows + r] = v[r * cols + c] } }
        return out
    }
}
