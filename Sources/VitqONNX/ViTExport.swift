import Foundation
import VitqModels
import VitqQuant
import VitqTensor

/// A recipe feature the export cannot express, naming the op.
public struct ExportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// ViT and DeiT (distilled too) as one ONNX graph over `pixel_values` [batch, C, H, W]
/// (normalised, as vitq's preprocessing gives them) to `logits` [batch, classes]:
/// - a float file: the float model (fp32 `MatMul`, `LayerNormalization`, `Softmax`, exact-erf GELU);
/// - a quantized file (`--format integer`): every quantized product as `MatMulInteger` on the
///   codes vitq computes, with vitq's epilogues (``IntegerOps``); float ops stay `MatMul`.
/// The patch embedding is a product over the image's patches (timm's Conv with kernel = stride),
/// so that every quantizer, per-token inputs included, applies to it as to any linear op.
public struct ViTExport {
    let vit: VisionTransformer
    let linear: [String: LinearSlot]
    let attention: [String: AttentionQuant]
    let opset: Int
    let format: ExportFormat
    let b: GraphBuilder
    let q: IntegerOps

    /// The ONNX model of `vit`, quantized as `network` says (nil: the float model).
    public static func model(_ vit: VisionTransformer, network: QuantizedNetwork?, format: ExportFormat, opset: Int,
                             metadata: [(String, String)], producerVersion: String) throws -> Onnx_ModelProto {
        let b = GraphBuilder(name: network == nil ? "vitq_fp32" : "vitq_\(format.rawValue)")
        let e = ViTExport(vit: vit, linear: network?.linear ?? [:], attention: network?.attention ?? [:], opset: opset, format: format,
                          b: b, q: IntegerOps(b: b))
        try e.build()
        return b.model(opset: opset, metadata: metadata, producerVersion: producerVersion)
    }

    func build() throws {
        let c = vit.config
        let g = c.imgSize / c.patchSize, e = c.embedDim
        b.input("pixel_values", .float, [.symbol("batch"), .size(c.inChans), .size(c.imgSize), .size(c.imgSize)])
        // Patches in (c, ky, kx) order, the order of patch_embed.proj's flattened weight.
        let grid = b.op("Reshape", ["pixel_values", b.int64s("patch_grid", [0, Int64(c.inChans), Int64(g), Int64(c.patchSize), Int64(g), Int64(c.patchSize)])], "patch_grid_view")
        let moved = b.op("Transpose", [grid], "patch_order", [Attr.ints("perm", [0, 2, 4, 1, 3, 5])])
        let patches = b.op("Reshape", [moved, b.int64s("patches_shape", [0, Int64(g * g), Int64(c.inChans * c.patchSize * c.patchSize)])], "patches")
        let embedded = try product(patches, "patch_embed.proj", vit.patchEmbed)
        // [cls, (dist), patches] + pos_embed.
        let batch = b.op("Slice", [b.op("Shape", ["pixel_values"], "input_shape"), b.int64s("zero", [0]), b.int64s("one", [1])], "batch_size")
        let tokenShape = b.op("Concat", [batch, b.int64s("token_tail", [1, Int64(e)])], "token_shape", [Attr.int("axis", 0)])
        var parts = [b.op("Expand", [b.floats("cls_token", vit.clsToken.array, dims: [1, 1, e]), tokenShape], "cls")]
        if let d = vit.distToken { parts.append(b.op("Expand", [b.floats("dist_token", d.array, dims: [1, 1, e]), tokenShape], "dist")) }
        let tokens = b.op("Concat", parts + [embedded], "tokens", [Attr.int("axis", 1)])
        var x = b.op("Add", [tokens, b.floats("pos_embed", vit.posEmbed.array, dims: [1, c.tokens, e])], "embed")
        for i in vit.blocks.indices { x = try block(i, x) }
        x = layerNorm(x, vit.norm, "norm")
        let first = b.op("Gather", [x, b.int64s("token0", [0], dims: [])], "head_input", [Attr.int("axis", 1)])
        var logits = try product(first, "head", vit.head)
        if let hd = vit.headDist {
            let second = b.op("Gather", [x, b.int64s("token1", [1], dims: [])], "head_dist_input", [Attr.int("axis", 1)])
            let dist = try product(second, "head_dist", hd)
            logits = b.op("Mul", [b.op("Add", [logits, dist], "heads_sum"), b.scalar("half", 0.5)], "logits_mean")
        }
        _ = b.op("Identity", [logits], "logits")
        b.output("logits", .float, [.symbol("batch"), .size(c.numClasses)])
    }

    func block(_ i: Int, _ x: String) throws -> String {
        let c = vit.config, blk = vit.blocks[i], p = "blocks.\(i)"
        let h = layerNorm(x, blk.norm1, p + ".norm1")
        let qkv = try product(h, p + ".attn.qkv", blk.qkv)
        // timm's reshape(B, N, 3, heads, head_dim).permute(2, 0, 3, 1, 4).
        let split = b.op("Transpose", [b.op("Reshape", [qkv, b.int64s(p + ".qkv_shape", [0, 0, 3, Int64(c.numHeads), Int64(c.headDim)])], p + ".qkv_heads")],
                         p + ".qkv_split", [Attr.ints("perm", [2, 0, 3, 1, 4])])
        func part(_ k: Int, _ n: String) -> String { b.op("Gather", [split, b.int64s("\(p).\(n)_index", [Int64(k)], dims: [])], "\(p).attn.\(n)", [Attr.int("axis", 0)]) }
        let ctx = try attend(part(0, "q"), part(1, "k"), part(2, "v"), block: p + ".attn")
        let merged = b.op("Reshape", [b.op("Transpose", [ctx], p + ".ctx_tokens", [Attr.ints("perm", [0, 2, 1, 3])]), b.int64s(p + ".ctx_shape", [0, 0, Int64(c.embedDim)])], p + ".attn.proj.input")
        let x1 = b.op("Add", [x, try product(merged, p + ".attn.proj", blk.proj)], p + ".attn_residual")
        let h2 = layerNorm(x1, blk.norm2, p + ".norm2")
        var hidden = gelu(try product(h2, p + ".mlp.fc1", blk.fc1), p + ".mlp.act")
        if let m = blk.hiddenMultiplier { hidden = b.op("Mul", [hidden, b.floats(p + ".mlp.fc2.input_multiplier", m.array)], p + ".mlp.fc2.input") }
        return b.op("Add", [x1, try product(hidden, p + ".mlp.fc2", blk.fc2)], p)
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

    // MARK: Products

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

    // MARK: Attention

    func attend(_ qh: String, _ kh: String, _ vh: String, block: String) throws -> String {
        let c = vit.config
        let scale = 1 / Float(c.headDim).squareRoot()
        guard let a = attention[block] else {
            let kt = b.op("Transpose", [kh], block + ".k_t", [Attr.ints("perm", [0, 1, 3, 2])])
            let s = b.op("Mul", [b.op("MatMul", [qh, kt], block + ".qk"), b.scalar(block + ".scale", scale)], block + ".scores")
            return b.op("MatMul", [b.op("Softmax", [s], block + ".softmax", [Attr.int("axis", -1)]), vh], block + ".matmul2")
        }
        let heads = c.numHeads
        if format == .qdq { return try qdqAttend(qh, kh, vh, a, scale: scale, block: block) }
        func idx(_ t: TensorQuant, _ h: Int) -> Int { t.granularity == .perHead ? h : 0 }
        let qc = codes(qh, a.q, heads: heads, name: block + ".q")
        let kc = codes(b.op("Transpose", [kh], block + ".k_t", [Attr.ints("perm", [0, 1, 3, 2])]), a.k, heads: heads, name: block + ".k")
        let vc = codes(vh, a.v, heads: heads, name: block + ".v")
        // S = fl(fl(Δq·Δk)·scale) · (q̂ − zq)(k̂ − zk)ᵀ, per head.
        let sScale = (0..<heads).map { a.q.scales[idx(a.q, $0)] * a.k.scales[idx(a.k, $0)] * scale }
        let s = b.op("Mul", [q.cast(integerProduct(qc, kc, block + ".qk_acc"), to: .float, block + ".qk_accf"), q.perHead(block + ".score_scale", sScale)], block + ".scores")
        let probs = b.op("Softmax", [s], block + ".softmax", [Attr.int("axis", -1)])
        let vScales = (0..<heads).map { a.v.scales[idx(a.v, $0)] }
        switch a.probs {
        case let .uniform(t):
            let pc = codes(probs, t, heads: heads, name: block + ".p")
            let pv = (0..<heads).map { t.scales[a.probs.index(head: $0)] * vScales[$0] }
            return b.op("Mul", [q.cast(integerProduct(pc, vc, block + ".pv_acc"), to: .float, block + ".pv_accf"), q.perHead(block + ".ctx_scale", pv)], block + ".matmul2")
        case let .twin(ts):
            let per = (0..<heads).map { ts[a.probs.index(head: $0)] }
            guard Set(per.map(\.maxMagnitude)).count == 1 else { throw ExportError("\(block): twin softmax quantizers of different widths per head") }
            let parts = q.twinParts(probs, kind: .softmax, inv1: q.perHead(block + ".p_inverse1", per.map { 1 / $0.delta1 }),
                                    inv2: q.perHead(block + ".p_inverse2", per.map { 1 / $0.delta2 }), qmax: per[0].maxMagnitude, name: block + ".p")
            let pow2 = b.doubles(block + ".p_pow2", per.map { Double(sign: .plus, exponent: $0.shift, significand: 1) }, dims: [1, heads, 1, 1])
            let acc = q.twinCombine(lo: integerProduct((parts.lo, false), vc, block + ".pv_acc_lo"), hi: integerProduct((parts.hi, false), vc, block + ".pv_acc_hi"),
                                    pow2: pow2, name: block + ".pv_accf")
            let pv = (0..<heads).map { per[$0].delta1 * vScales[$0] }
            return b.op("Mul", [acc, q.perHead(block + ".ctx_scale", pv)], block + ".matmul2")
        case .perToken:
            throw ExportError("\(block): per-token softmax probabilities are not an attention quantizer vitq writes")
        }
    }

    /// An attention operand's codes: int8/uint8 when its grid has no zero point, else the
    /// centred integers q − z as int32 (MatMulInteger's zero points cannot vary per head).
    func codes(_ x: String, _ t: TensorQuant, heads: Int, name: String) -> (value: String, int32: Bool) {
        let per = (0..<heads).map { t.granularity == .perHead ? $0 : 0 }
        let inverse = q.perHead(name + "_inverse", per.map { 1 / t.scales[$0] })
        guard t.isAffine else { return (q.quantize(x, inverse: inverse, zero: nil, scheme: t.scheme, name: name), false) }
        let z = q.perHead(name + "_zero", per.map { Float(t.zeroPoints[$0]) })
        var v = b.op("Round", [b.op("Mul", [x, inverse], name + "_scaled")], name + "_rounded")
        v = b.op("Clip", [b.op("Add", [v, z], name + "_shifted"), b.scalar(name + "_qmin", Float(t.scheme.qmin)), b.scalar(name + "_qmax", Float(t.scheme.qmax))], name + "_clipped")
        return (q.cast(b.op("Sub", [v, z], name + "_centred"), to: .int32, name + "_q"), true)
    }

    /// The exact product of two code tensors: MatMulInteger, or an int32 MatMul of centred codes.
    func integerProduct(_ a: (value: String, int32: Bool), _ c: (value: String, int32: Bool), _ name: String) -> String {
        if !a.int32 && !c.int32 { return b.op("MatMulInteger", [a.value, c.value], name) }
        let x = a.int32 ? a.value : q.cast(a.value, to: .int32, name + "_a32")
        let y = c.int32 ? c.value : q.cast(c.value, to: .int32, name + "_b32")
        return b.op("MatMul", [x, y], name)
    }

    static func transposed<T>(_ v: [T], rows: Int, cols: Int) -> [T] {
        var out = v
        for r in 0..<rows { for c in 0..<cols { out[c * rows + r] = v[r * cols + c] } }
        return out
    }
}

/// What `vitq export --format` writes for a quantized file.
public enum ExportFormat: String, CaseIterable, Sendable {
    /// `MatMulInteger` on the integer codes vitq computes, with its epilogues: the same numbers.
    case integer
    /// QuantizeLinear/DequantizeLinear pairs before float products, for QDQ toolchains.
    case qdq
}
