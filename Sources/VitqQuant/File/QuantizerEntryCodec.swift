import Foundation
import VitqFormats
import VitqModels
import VitqTensor

/// The quantizer entries of a quantized file's `ops` metadata and their tensors, both ways:
/// ``addQuant``/``addOperand`` write them, ``quant``/``operand`` (and ``readLinear``,
/// ``readAttention`` for whole ops) read and validate them.
extension QModelFile {
    /// Adds an activation quantizer: uniform as ``addQuant``; twin as `<prefix>_delta1` (F32) and
    /// `<prefix>_shift` (I32), one per group, with `"kind": "twin"`, the twin kind and bits.
    /// Per-token has no tensor: `"granularity": "per_token"` and its grid.
    static func addOperand(_ w: inout SafeTensorsWriter, _ prefix: String, _ q: OperandQuant) -> [String: Any] {
        if case let .perToken(s) = q {
            return ["granularity": Granularity.perToken.rawValue, "bits": s.bits, "signed": s.signed, "narrow": s.narrow]
        }
        guard case let .twin(t) = q else { return addQuant(&w, prefix, q.uniform) }
        w.add("\(prefix)_delta1", shape: [t.count], floats: t.map(\.delta1))
        let shifts = t.map { Int32($0.shift) }
        w.add("\(prefix)_shift", dtype: .i32, shape: [t.count], bytes: shifts.withUnsafeBufferPointer { Data(buffer: $0) })
        return ["kind": "twin", "twin_kind": t[0].kind.rawValue, "bits": t[0].bits,
                "granularity": t.count == 1 ? "per_tensor" : "per_head",
                "delta1": "\(prefix)_delta1", "shift": "\(prefix)_shift"]
    }

    /// Adds `<prefix>_scale` (and `<prefix>_zero_point` when affine) and returns the op metadata entry.
    static func addQuant(_ w: inout SafeTensorsWriter, _ prefix: String, _ q: TensorQuant) -> [String: Any] {
        w.add("\(prefix)_scale", shape: [q.scales.count], floats: q.scales)
        var entry: [String: Any] = [
            "bits": q.scheme.bits, "signed": q.scheme.signed, "narrow": q.scheme.narrow,
            "granularity": q.granularity.rawValue, "scale": "\(prefix)_scale",
        ]
        if q.isAffine {
            w.add("\(prefix)_zero_point", dtype: .i32, shape: [q.zeroPoints.count],
                  bytes: q.zeroPoints.withUnsafeBufferPointer { Data(buffer: $0) })
            entry["zero_point"] = "\(prefix)_zero_point"
        }
        return entry
    }

    /// Linear op `layout` (weight stored as its `weightShape`): quantized when `ops` has its entry.
    static func readLinear(_ layout: LinearLayout, ops: [String: Any], _ l: StrictTensorLoader, _ path: String) throws -> LinearSlot {
        let name = layout.name, out = layout.outFeatures, inF = layout.inFeatures, shape = layout.weightShape
        let bias = layout.biasOptional ? try l.loadIfPresent("\(name).bias", [out]) : try l.load("\(name).bias", [out])
        guard let entry = ops[name] else {
            let wt = try l.load("\(name).weight", shape)
            return .float(Linear(weight: Tensor(shape: [out, inF], values: wt.array), bias: bias))
        }
        guard let e = entry as? [String: Any], e["kind"] as? String == "linear" else { throw QModelError(path, "ops '\(name)': expected kind 'linear'") }
        let wq = try quant(e["weight"], op: name, field: "weight", count: ["per_tensor": 1, "per_channel": out], l, path)
        let iq = try operand(e["input"], op: name, field: "input", count: ["per_tensor": 1], perToken: true, l, path)
        guard !wq.isAffine else { throw QModelError(path, "ops '\(name)': weight zero points are not supported (weights are symmetric)") }
        guard wq.scheme.signed else { throw QModelError(path, "ops '\(name)': weights must be signed") }
        let values = try weightValues(name, shape: shape, out: out, inFeatures: inF, bits: wq.scheme.bits, l, path)
        if let bad = values.firstIndex(where: { Int32($0) < wq.scheme.qmin || Int32($0) > wq.scheme.qmax }) {
            throw QModelError(path, "tensor '\(name).weight': value \(values[bad]) at \(bad) is outside the \(wq.scheme.bits)-bit grid")
        }
        return .quantized(QuantizedWeight(values: values, outFeatures: out, inFeatures: inF, quant: wq, bias: bias), input: iq)
    }

    /// A quantized weight's integers: I8 in its checkpoint shape, or at 4 bits or fewer U8
    /// [out, ⌈in/2⌉] two per byte (``PackedNibbles``). A dtype or shape that disagrees with the
    /// bit width is refused.
    static func weightValues(_ name: String, shape: [Int], out: Int, inFeatures inF: Int, bits: Int,
                             _ l: StrictTensorLoader, _ path: String) throws -> [Int8] {
        let key = "\(name).weight"
        guard PackedNibbles.isPacked(bits: bits) else {
            if let info = l.file.tensors[key], info.dtype == .u8 {
                throw QModelError(path, "tensor '\(key)': a \(bits)-bit weight is stored as I8 \(shape), not packed U8 (packing is for 4 bits or fewer)")
            }
            return try l.loadInt8(key, shape)
        }
        let packedShape = [out, PackedNibbles.rowBytes(inF)]
        guard let info = l.file.tensors[key] else { return try l.loadInt8(key, shape) }   // names the missing key
        guard info.dtype == .u8, info.shape == packedShape else {
            throw QModelError(path, "tensor '\(key)': a \(bits)-bit weight is stored packed as U8 \(packedShape), got \(info.dtype.rawValue) \(info.shape)")
        }
        l.markUsed(key)
        guard let values = PackedNibbles.unpack(Array(try l.file.rawBytes(key)), rows: out, inFeatures: inF) else {
            throw QModelError(path, "tensor '\(key)': the padding nibble of an odd-length row is not 0")
        }
        return values
    }

    /// The attention quantizers of block `p` (`heads` heads), nil when `ops` has neither product.
    static func readAttention(_ p: String, heads: Int, ops: [String: Any], _ l: StrictTensorLoader, _ path: String) throws -> AttentionQuant? {
        switch (ops["\(p).matmul_qk"], ops["\(p).matmul_pv"]) {
        case (nil, nil): return nil
        case let (qk?, pv?):
            let counts = ["per_tensor": 1, "per_head": heads]
            guard let qkE = qk as? [String: Any], qkE["kind"] as? String == "matmul" else { throw QModelError(path, "ops '\(p).matmul_qk': expected kind 'matmul'") }
            guard let pvE = pv as? [String: Any], pvE["kind"] as? String == "matmul" else { throw QModelError(path, "ops '\(p).matmul_pv': expected kind 'matmul'") }
            return AttentionQuant(
                q: try quant(qkE["a"], op: "\(p).matmul_qk", field: "a", count: counts, l, path),
                k: try quant(qkE["b"], op: "\(p).matmul_qk", field: "b", count: counts, l, path),
                probs: try operand(pvE["a"], op: "\(p).matmul_pv", field: "a", count: counts, l, path),
                v: try quant(pvE["b"], op: "\(p).matmul_pv", field: "b", count: counts, l, path))
        default:
            throw QModelError(path, "ops: \(p) quantizes only one of matmul_qk and matmul_pv")
        }
    }

    /// Parses an activation quantizer entry: twin (`"kind": "twin"`), per-token (linear inputs,
    /// when `perToken`) or uniform (``quant``).
    static func operand(_ any: Any?, op: String, field: String, count: [String: Int], perToken: Bool = false,
                        _ l: StrictTensorLoader, _ path: String) throws -> OperandQuant {
        if perToken, let e = any as? [String: Any], e["granularity"] as? String == Granularity.perToken.rawValue {
            let at = "ops '\(op)' \(field)"
            guard let bits = e["bits"] as? Int, (2...8).contains(bits) else { throw QModelError(path, "\(at): 'bits' must be an integer in 2...8") }
            guard e["signed"] as? Bool == true, let narrow = e["narrow"] as? Bool else {
                throw QModelError(path, "\(at): a per-token quantizer must be signed, with 'narrow' a boolean")
            }
            return .perToken(QuantScheme(bits: bits, signed: true, narrow: narrow))
        }
        guard let e = any as? [String: Any], e["kind"] as? String == "twin" else {
            return .uniform(try quant(any, op: op, field: field, count: count, l, path))
        }
        let at = "ops '\(op)' \(field)"
        guard let k = e["twin_kind"] as? String, let kind = TwinKind(rawValue: k) else { throw QModelError(path, "\(at): 'twin_kind' must be softmax or gelu") }
        guard let bits = e["bits"] as? Int, (2...8).contains(bits) else { throw QModelError(path, "\(at): 'bits' must be an integer in 2...8") }
        guard let g = e["granularity"] as? String, let n = count[g] else {
            throw QModelError(path, "\(at): 'granularity' must be one of \(count.keys.sorted().joined(separator: ", "))")
        }
        guard let dk = e["delta1"] as? String, l.has(dk) else { throw QModelError(path, "\(at): missing delta1 tensor '\(e["delta1"] ?? "")'") }
        guard let sk = e["shift"] as? String, l.has(sk) else { throw QModelError(path, "\(at): missing shift tensor '\(e["shift"] ?? "")'") }
        guard try l.file.info(dk).dtype == .f32 else { throw QModelError(path, "tensor '\(dk)': delta1 must be F32") }
        let deltas = try l.load(dk, [n]).array
        guard try l.file.info(sk).dtype == .i32 else { throw QModelError(path, "tensor '\(sk)': shifts must be I32") }
        l.markUsed(sk)
        guard try l.file.info(sk).shape == [n] else { throw QModelError(path, "tensor '\(sk)' has shape \(try l.file.info(sk).shape), expected [\(n)]") }
        let shifts = try l.file.integers(sk)
        return .twin(try (0..<n).map { i in
            guard deltas[i] > 0, deltas[i].isFinite else { throw QModelError(path, "tensor '\(dk)': delta1 \(deltas[i]) at \(i) is not a positive finite number") }
            guard (0...20).contains(shifts[i]) else { throw QModelError(path, "tensor '\(sk)': shift \(shifts[i]) at \(i) is outside 0...20") }
            return TwinQuant(kind: kind, bits: bits, delta1: deltas[i], shift: Int(shifts[i]))
        })
    }

    /// Parses one quantizer entry of the `ops` metadata and loads its scale (and zero point) tensors.
    static func quant(_ any: Any?, op: String, field: String, count: [String: Int], _ l: StrictTensorLoader, _ path: String) throws -> TensorQuant {
        let at = "ops '\(op)' \(field)"
        guard let e = any as? [String: Any] else { throw QModelError(path, "\(at): missing quantizer entry") }
        guard let bits = e["bits"] as? Int, (2...8).contains(bits) else { throw QModelError(path, "\(at): 'bits' must be an integer in 2...8") }
        guard let signed = e["signed"] as? Bool, let narrow = e["narrow"] as? Bool else { throw QModelError(path, "\(at): 'signed' and 'narrow' must be booleans") }
        guard let g = e["granularity"] as? String, let gran = Granularity(rawValue: g), let n = count[g] else {
            throw QModelError(path, "\(at): 'granularity' must be one of \(count.keys.sorted().joined(separator: ", "))")
        }
        guard let scaleKey = e["scale"] as? String else { throw QModelError(path, "\(at): 'scale' must name a tensor") }
        guard l.has(scaleKey) else { throw QModelError(path, "\(at): missing scale tensor '\(scaleKey)'") }
        let info = try l.file.info(scaleKey)
        guard info.dtype == .f32 else { throw QModelError(path, "tensor '\(scaleKey)': scales must be F32, got \(info.dtype.rawValue)") }
        let scales = try l.load(scaleKey, [n]).array
        if let bad = scales.firstIndex(where: { !($0 > 0 && $0.isFinite) }) {
            throw QModelError(path, "tensor '\(scaleKey)': scale \(scales[bad]) at \(bad) is not a positive finite number")
        }
        let scheme = QuantScheme(bits: bits, signed: signed, narrow: narrow)
        var zeros = [Int32](repeating: 0, count: n)
        if let zk = e["zero_point"] {
            guard let zkey = zk as? String, l.has(zkey) else { throw QModelError(path, "\(at): missing zero-point tensor '\(zk)'") }
            guard try l.file.info(zkey).dtype == .i32 else { throw QModelError(path, "tensor '\(zkey)': zero points must be I32") }
            l.markUsed(zkey)
            guard try l.file.info(zkey).shape == [n] else { throw QModelError(path, "tensor '\(zkey)' has shape \(try l.file.info(zkey).shape), expected [\(n)]") }
            zeros = try l.file.integers(zkey).map { Int32($0) }
            if let bad = zeros.first(where: { $0 < scheme.qmin || $0 > scheme.qmax }) {
                throw QModelError(path, "tensor '\(zkey)': zero point \(bad) is outside [\(scheme.qmin), \(scheme.qmax)]")
            }
        }
        return TensorQuant(scheme: scheme, granularity: gran, scales: scales, zeroPoints: zeros)
    }
}
