import Foundation
import VitqFormats
import VitqModels
import VitqTensor

/// A quantized file that cannot be read, naming the file and the key.
public struct QModelError: Error, CustomStringConvertible {
    public let description: String
    init(_ path: String, _ detail: String) { description = "\(path): \(detail)" }
}

/// Provenance stored with a quantized network.
public struct QModelProvenance: Equatable, Sendable {
    /// SHA-256 of the float model file that was quantized.
    public var sourceSHA256: String
    /// Its file name.
    public var sourceName: String
    /// The resolved recipe as canonical JSON.
    public var recipeJSON: String
    public init(sourceSHA256: String, sourceName: String, recipeJSON: String) {
        self.sourceSHA256 = sourceSHA256; self.sourceName = sourceName; self.recipeJSON = recipeJSON
    }
}

/// The quantized model file: one `.safetensors` (Docs/QMODEL_FORMAT.md is the specification).
public enum QModelFile {
    public static let formatName = "vitq.qmodel"
    public static let version = 1

    // MARK: writing

    /// Writes `model` to `path` atomically; the same network and provenance always give the same bytes.
    public static func write(_ model: QuantizedModel, provenance: QModelProvenance, to path: String) throws {
        switch model {
        case let .vit(net): try write(net, provenance: provenance, to: path)
        case let .swin(net): try writeSwin(net, provenance: provenance, to: path)
        }
    }

    /// Writes a ViT/DeiT network (no `architecture` metadata: ViT is the default).
    public static func write(_ net: QuantizedNetwork, provenance: QModelProvenance, to path: String) throws {
        var w = SafeTensorsWriter()
        w.add("cls_token", net.clsToken)
        if let d = net.distToken { w.add("dist_token", d) }
        w.add("pos_embed", net.posEmbed)
        for (i, n) in net.norms.enumerated() {
            addNorm(&w, "blocks.\(i).norm1", n.norm1); addNorm(&w, "blocks.\(i).norm2", n.norm2)
            if let m = net.hiddenMultipliers[i] { w.add("blocks.\(i).mlp.fc2.input_multiplier", m) }
        }
        addNorm(&w, "norm", net.norm)
        var ops: [String: Any] = [:]
        for name in net.spec.vit.linearOpNames {
            addLinear(&w, name, shape: weightShape(name, spec: net.spec), net.linear[name]!, ops: &ops)
        }
        for (i, a) in net.attention.enumerated() {
            if let a { addAttention(&w, "blocks.\(i).attn", a, ops: &ops) }
        }
        w.metadata = try metadata(provenance, model: canonicalJSON(net.spec), ops: ops)
        try w.write(to: path)
    }

    /// A linear op's weight (I8 when quantized, F32 otherwise), its bias and its `ops` entry.
    static func addLinear(_ w: inout SafeTensorsWriter, _ name: String, shape: [Int], _ slot: LinearSlot, ops: inout [String: Any]) {
        switch slot {
        case let .float(l):
            w.add("\(name).weight", shape: shape, floats: l.weight.array)
            if let b = l.bias { w.add("\(name).bias", b) }
        case let .quantized(qw, input):
            w.add("\(name).weight", dtype: .i8, shape: shape, bytes: qw.values.withUnsafeBufferPointer { Data(buffer: $0) })
            if let b = qw.bias { w.add("\(name).bias", b) }
            ops[name] = [
                "kind": "linear",
                "weight": addQuant(&w, "\(name).weight", qw.quant),
                "input": addOperand(&w, "\(name).input", input),
            ] as [String: Any]
        }
    }

    /// The `ops` entries `<block>.matmul_qk` and `<block>.matmul_pv` and their quantizer tensors.
    static func addAttention(_ w: inout SafeTensorsWriter, _ p: String, _ a: AttentionQuant, ops: inout [String: Any]) {
        ops["\(p).matmul_qk"] = ["kind": "matmul", "a": addQuant(&w, "\(p).matmul_qk.a", a.q), "b": addQuant(&w, "\(p).matmul_qk.b", a.k)]
        ops["\(p).matmul_pv"] = ["kind": "matmul", "a": addOperand(&w, "\(p).matmul_pv.a", a.probs), "b": addQuant(&w, "\(p).matmul_pv.b", a.v)]
    }

    /// The metadata every quantized file has; `extra` adds keys (a Swin file's `architecture`).
    static func metadata(_ provenance: QModelProvenance, model: String, ops: [String: Any], extra: [String: String] = [:]) throws -> [String: String] {
        var m = [
            "format": formatName,
            "format_version": String(version),
            "source_sha256": provenance.sourceSHA256,
            "source_name": provenance.sourceName,
            "recipe": provenance.recipeJSON,
            "model": model,
            "ops": String(decoding: try JSONSerialization.data(withJSONObject: ops, options: [.sortedKeys]), as: UTF8.self),
        ]
        for (k, v) in extra { m[k] = v }
        return m
    }

    static func addNorm(_ w: inout SafeTensorsWriter, _ p: String, _ n: LayerNorm) {
        w.add("\(p).weight", n.weight); w.add("\(p).bias", n.bias)
    }

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

    static func canonicalJSON<T: Encodable>(_ v: T) throws -> String {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return String(decoding: try e.encode(v), as: UTF8.self)
    }

    /// The stored shape of a linear op's weight (the patch embedding keeps its conv shape).
    static func weightShape(_ name: String, spec: ModelSpec) -> [Int] {
        let (out, inF) = dims(name, spec: spec)
        let c = spec.vit
        return name == "patch_embed.proj" ? [c.embedDim, c.inChans, c.patchSize, c.patchSize] : [out, inF]
    }

    /// [out, in] of a linear op.
    static func dims(_ name: String, spec: ModelSpec) -> (Int, Int) {
        let c = spec.vit
        if name == "patch_embed.proj" { return (c.embedDim, c.inChans * c.patchSize * c.patchSize) }
        if name == "head" || name == "head_dist" { return (c.numClasses, c.embedDim) }
        if name.hasSuffix("attn.qkv") { return (3 * c.embedDim, c.embedDim) }
        if name.hasSuffix("mlp.fc1") { return (c.mlpHidden, c.embedDim) }
        if name.hasSuffix("mlp.fc2") { return (c.embedDim, c.mlpHidden) }
        return (c.embedDim, c.embedDim)
    }

    // MARK: reading

    /// Whether `file` is a vitq quantized model (by its `format` metadata).
    public static func isQuantized(_ file: SafeTensorsFile) -> Bool { file.metadata["format"] == formatName }

    /// Reads and validates a quantized file: format and version, the architecture and model
    /// spec, every op's quantizer entry and scale tensors (shape from the granularity, finite and
    /// positive, zero points on the grid), and no tensor left unused.
    public static func read(_ file: SafeTensorsFile) throws -> (model: QuantizedModel, provenance: QModelProvenance) {
        let path = file.path
        let meta = file.metadata
        guard meta["format"] == formatName else { throw QModelError(path, "not a vitq quantized model (metadata 'format' is \(meta["format"].map { "'\($0)'" } ?? "missing"))") }
        guard let v = meta["format_version"] else { throw QModelError(path, "metadata 'format_version' is missing") }
        guard v == String(version) else { throw QModelError(path, "unsupported format_version '\(v)' (this vitq reads version \(version))") }
        for key in ["source_sha256", "source_name", "recipe", "model", "ops"] where meta[key] == nil {
            throw QModelError(path, "metadata '\(key)' is missing")
        }
        guard let ops = (try? JSONSerialization.jsonObject(with: Data(meta["ops"]!.utf8))) as? [String: Any] else {
            throw QModelError(path, "metadata 'ops' is not a JSON object")
        }
        let prov = QModelProvenance(sourceSHA256: meta["source_sha256"]!, sourceName: meta["source_name"]!, recipeJSON: meta["recipe"]!)
        switch meta["architecture"] {
        case nil, "vit": return (.vit(try readViT(file, ops: ops)), prov)
        case "swin": return (.swin(try readSwin(file, ops: ops)), prov)
        case let a?: throw QModelError(path, "metadata 'architecture': unknown architecture '\(a)' (vit or swin)")
        }
    }

    static func readViT(_ file: SafeTensorsFile, ops: [String: Any]) throws -> QuantizedNetwork {
        let path = file.path
        let spec: ModelSpec
        do { spec = try JSONDecoder().decode(ModelSpec.self, from: Data(file.metadata["model"]!.utf8)) } catch {
            throw QModelError(path, "metadata 'model' is not a valid model spec: \(error)")
        }
        let c = spec.vit
        guard c.embedDim > 0, c.numHeads > 0, c.embedDim % c.numHeads == 0, c.depth > 0, c.patchSize > 0, c.imgSize % c.patchSize == 0 else {
            throw QModelError(path, "metadata 'model' has inconsistent dimensions")
        }
        do {
            try c.checkSizes(source: "metadata 'model'", fileBytes: file.byteCount, tensorCount: file.tensors.count)
            try spec.preprocess.validate(source: "metadata 'model'", channels: c.inChans, imageSize: c.imgSize)
        } catch { throw QModelError(path, "\(error)") }
        let l = StrictTensorLoader(file)
        var slots: [String: LinearSlot] = [:]
        let linearNames = c.linearOpNames
        let known = Set(linearNames + (0..<c.depth).flatMap { ["blocks.\($0).attn.matmul_qk", "blocks.\($0).attn.matmul_pv"] })
        if let unknown = ops.keys.sorted().first(where: { !known.contains($0) }) {
            throw QModelError(path, "ops: unknown op '\(unknown)' for this architecture")
        }
        for name in linearNames {
            let (out, inF) = dims(name, spec: spec)
            let biasOptional = name.hasSuffix("attn.qkv") && !c.qkvBias
            slots[name] = try readLinear(name, out: out, in: inF, shape: weightShape(name, spec: spec), biasOptional: biasOptional, ops: ops, l, path)
        }
        let attention = try (0..<c.depth).map { i in try readAttention("blocks.\(i).attn", heads: c.numHeads, ops: ops, l, path) }
        let e = c.embedDim
        let net = QuantizedNetwork(
            spec: spec, clsToken: try l.load("cls_token", [1, 1, e]), distToken: c.distilled ? try l.load("dist_token", [1, 1, e]) : nil,
            posEmbed: try l.load("pos_embed", [1, c.tokens, e]),
            norms: try (0..<c.depth).map { i in
                (try LayerNorm(l, "blocks.\(i).norm1", dim: e, eps: c.layerNormEps), try LayerNorm(l, "blocks.\(i).norm2", dim: e, eps: c.layerNormEps))
            },
            hiddenMultipliers: try (0..<c.depth).map { i in try hiddenMultiplier(l, "blocks.\(i).mlp.fc2.input_multiplier", c.mlpHidden, path) },
            norm: try LayerNorm(l, "norm", dim: e, eps: c.layerNormEps), linear: slots, attention: attention)
        try l.finish()
        return net
    }

    /// GELU smoothing's optional per-channel multiplier `name` [hidden]: finite and positive.
    static func hiddenMultiplier(_ l: StrictTensorLoader, _ name: String, _ hidden: Int, _ path: String) throws -> Tensor? {
        guard let m = try l.loadIfPresent(name, [hidden]) else { return nil }
        if let bad = (0..<hidden).first(where: { !(m.data[$0].isFinite && m.data[$0] > 0) }) {
            throw QModelError(path, "tensor '\(name)': value \(m.data[bad]) at \(bad) is not a finite positive multiplier")
        }
        return m
    }

    /// Linear op `name` [out, in] (weight stored as `shape`): quantized when `ops` has its entry.
    static func readLinear(_ name: String, out: Int, in inF: Int, shape: [Int], biasOptional: Bool, ops: [String: Any],
                           _ l: StrictTensorLoader, _ path: String) throws -> LinearSlot {
        let bias = biasOptional ? try l.loadIfPresent("\(name).bias", [out]) : try l.load("\(name).bias", [out])
        guard let entry = ops[name] else {
            let wt = try l.load("\(name).weight", shape)
            return .float(Linear(weight: Tensor(shape: [out, inF], values: wt.array), bias: bias))
        }
        guard let e = entry as? [String: Any], e["kind"] as? String == "linear" else { throw QModelError(path, "ops '\(name)': expected kind 'linear'") }
        let wq = try quant(e["weight"], op: name, field: "weight", count: ["per_tensor": 1, "per_channel": out], l, path)
        let iq = try operand(e["input"], op: name, field: "input", count: ["per_tensor": 1], perToken: true, l, path)
        guard !wq.isAffine else { throw QModelError(path, "ops '\(name)': weight zero points are not supported (weights are symmetric)") }
        guard wq.scheme.signed else { throw QModelError(path, "ops '\(name)': weights must be signed") }
        let values = try l.loadInt8("\(name).weight", shape)
        if let bad = values.firstIndex(where: { Int32($0) < wq.scheme.qmin || Int32($0) > wq.scheme.qmax }) {
            throw QModelError(path, "tensor '\(name).weight': value \(values[bad]) at \(bad) is outside the \(wq.scheme.bits)-bit grid")
        }
        return .quantized(QuantizedWeight(values: values, outFeatures: out, inFeatures: inF, quant: wq, bias: bias), input: iq)
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
