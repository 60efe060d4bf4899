import Foundation
import VitqQuant

/// `--format qdq`: the quantizers as QuantizeLinear/DequantizeLinear pairs in front of float
/// products, where toolchains such as TensorRT and ORT's QDQ optimiser look for them:
/// - weights: int8 per output channel, zero point 0, on axis 1 of MatMul's [in, out] weight (the
///   axis ORT's own quantize_static gives MatMul weights; Conv's and Gemm's axis 0 is the same
///   output channel in their [out, in] layout);
/// - per-tensor inputs and per-head attention operands (axis 1 of [batch, heads, tokens, dim]),
///   with their zero points;
/// - grids narrower than the storage type (fewer bits, narrow range) add a `Clip` of the
///   dequantized value to the grid's ends, which equals clamping the code;
/// - what QDQ cannot say is spelled in float: per-token inputs (the row step from `ReduceMax`,
///   then round, clip and rescale) and twin quantizers (two grids joined by `Where`).
extension ExportOps {
    func qdqLinear(_ x: String, _ name: String, _ w: QuantizedWeight, _ input: OperandQuant) throws -> String {
        let out = w.outFeatures
        let values = b.int8s(name + ".weight_t", Self.transposed(w.values, rows: out, cols: w.inFeatures), dims: [w.inFeatures, out])
        let weight = b.op("DequantizeLinear", [values, b.floats(name + ".weight_scale", (0..<out).map { w.scale($0) }),
                                               b.int8s(name + ".weight_zero_point", [Int8](repeating: 0, count: out), dims: [out])],
                          name + ".weight_dq", [Attr.int("axis", 1)])
        let xq: String
        switch input {
        case let .uniform(t):
            guard t.scales.count == 1 else { throw ExportError("\(name): input quantizer with \(t.scales.count) scales (QDQ inputs are per tensor)") }
            xq = qdq(x, scales: t.scales, zeros: t.zeroPoints, scheme: t.scheme, axis: nil, name: name + ".input")
        case let .perToken(scheme):
            let step = perTokenStep(x, scheme: scheme, name: name + ".input")
            let codes = b.op("Clip", [b.op("Round", [b.op("Mul", [x, b.op("Div", [b.scalar(name + ".input_one", 1), step], name + ".input_inverse")], name + ".input_scaled")], name + ".input_rounded"),
                                      b.scalar(name + ".input_qmin", Float(scheme.qmin)), b.scalar(name + ".input_qmax", Float(scheme.qmax))], name + ".input_codes")
            xq = b.op("Mul", [codes, step], name + ".input_fq")
        case let .twin(ts):
            guard ts.count == 1, let t = ts.first else { throw ExportError("\(name): twin input with \(ts.count) quantizers (one per linear op)") }
            xq = twin(x, t.kind, inv1: b.scalar(name + ".input_inverse1", 1 / t.delta1), inv2: b.scalar(name + ".input_inverse2", 1 / t.delta2),
                      d1: b.scalar(name + ".input_delta1", t.delta1), d2: b.scalar(name + ".input_delta2", t.delta2), qmax: t.maxMagnitude, name: name + ".input")
        }
        let y = b.op("MatMul", [xq, weight], name + "_matmul")
        guard let bias = w.bias else { return y }
        return b.op("Add", [y, b.floats(name + ".bias", bias.array)], name)
    }

    /// Quantize-dequantize on `scheme`'s grid: per tensor (`axis` nil) or per `axis` (one scale per index).
    func qdq(_ x: String, scales: [Float], zeros: [Int32], scheme: QuantScheme, axis: Int?, name: String) -> String {
        let storage: (lo: Int32, hi: Int32) = scheme.signed ? (-128, 127) : (0, 255)
        let dims = axis == nil ? [] : [scales.count]
        let s = b.floats(name + "_scale", scales, dims: dims)
        let z = scheme.signed ? b.int8s(name + "_zero_point", zeros.map { Int8($0) }, dims: dims)
                              : b.initializer(name + "_zero_point", .uint8, dims: dims, raw: Data(zeros.map { UInt8($0) }))
        let attrs = axis.map { [Attr.int("axis", $0)] } ?? []
        let q = b.op("QuantizeLinear", [x, s, z], name + "_q", attrs)
        let y = b.op("DequantizeLinear", [q, s, z], name + "_dq", attrs)
        guard scheme.qmin > storage.lo || scheme.qmax < storage.hi else { return y }
        // The grid's ends, as DequantizeLinear computes them: (q − z)·s.
        let shape = axis.map { a in (0..<4).map { $0 == a ? scales.count : 1 } } ?? []
        let lo = zip(scales, zeros).map { Float(scheme.qmin - $1) * $0 }, hi = zip(scales, zeros).map { Float(scheme.qmax - $1) * $0 }
        // Max and Min rather than Clip, whose bounds are scalars: per-axis ends broadcast.
        return b.op("Min", [b.op("Max", [y, b.floats(name + "_low", axis == nil ? [lo[0]] : lo, dims: shape)], name + "_above"),
                            b.floats(name + "_high", axis == nil ? [hi[0]] : hi, dims: shape)], name + "_fq")
    }

    /// Δ_r = max|x_r| / qmax per row (1 when that is 0 or not finite), for both formats.
    func perTokenStep(_ x: String, scheme: QuantScheme, name: String) -> String {
        let m = reduceMaxLast(b.op("Abs", [x], name + "_abs"), name + "_max")
        let bad = b.op("Or", [b.op("Equal", [m, b.scalar(name + "_zero", 0)], name + "_is_zero"),
                              b.op("Or", [b.op("IsInf", [m], name + "_is_inf"), b.op("IsNaN", [m], name + "_is_nan")], name + "_not_finite")], name + "_degenerate")
        return b.op("Where", [bad, b.scalar(name + "_unit", 1), b.op("Div", [m, b.scalar(name + "_qmax_f", Float(scheme.qmax))], name + "_ratio")], name + "_step")
    }

    /// A twin quantizer's value in float: lo·Δ1 where the value is in R1, hi·Δ2 in R2.
    func twin(_ x: String, _ kind: TwinKind, inv1: String, inv2: String, d1: String, d2: String, qmax: Int, name: String) -> String {
        let parts = q.twinParts(x, kind: kind, inv1: inv1, inv2: inv2, qmax: qmax, name: name, cast: false)
        return b.op("Add", [b.op("Mul", [parts.lo, d1], name + "_lo_fq"), b.op("Mul", [parts.hi, d2], name + "_hi_fq")], name + "_fq")
    }

    /// Attention with QDQ operands: per-head (axis 1) or per-tensor Q, K, V and P, float products.
    func qdqAttend(_ qh: String, _ kh: String, _ vh: String, _ a: AttentionQuant, heads: Int, scale: Float, block: String,
                   scoreBias: (String) -> String) throws -> String {
        func operand(_ x: String, _ t: TensorQuant, _ name: String, perHead: Bool? = nil) -> String {
            perHead ?? (t.granularity == .perHead)
                ? qdq(x, scales: (0..<heads).map { t.scales[$0] }, zeros: (0..<heads).map { t.zeroPoints[$0] }, scheme: t.scheme, axis: 1, name: name)
                : qdq(x, scales: [t.scales[0]], zeros: [t.zeroPoints[0]], scheme: t.scheme, axis: nil, name: name)
        }
        let qq = operand(qh, a.q, block + ".q"), kq = operand(kh, a.k, block + ".k"), vq = operand(vh, a.v, block + ".v")
        let kt = b.op("Transpose", [kq], block + ".k_t", [Attr.ints("perm", [0, 1, 3, 2])])
        let s = b.op("Mul", [b.op("MatMul", [qq, kt], block + ".qk"), b.scalar(block + ".scale", scale)], block + ".scores")
        let probs = b.op("Softmax", [scoreBias(s)], block + ".softmax", [Attr.int("axis", -1)])
        let pq: String
        switch a.probs {
        case let .uniform(t):
            pq = operand(probs, t, block + ".p", perHead: a.probs.count > 1)
        case let .twin(ts):
            let per = (0..<heads).map { ts[a.probs.index(head: $0)] }
            guard Set(per.map(\.maxMagnitude)).count == 1 else { throw ExportError("\(block): twin softmax quantizers of different widths per head") }
            pq = twin(probs, .softmax, inv1: q.perHead(block + ".p_inverse1", per.map { 1 / $0.delta1 }), inv2: q.perHead(block + ".p_inverse2", per.map { 1 / $0.delta2 }),
                      d1: q.perHead(block + ".p_delta1", per.map(\.delta1)), d2: q.perHead(block + ".p_delta2", per.map(\.delta2)),
                      qmax: per[0].maxMagnitude, name: block + ".p")
        case .perToken:
            throw ExportError("\(block): per-token softmax probabilities are not an attention quantizer vitq writes")
        }
        return b.op("MatMul", [pq, vq], block + ".matmul2")
    }
}
