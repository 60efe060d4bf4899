import VitqModels
import VitqTensor

/// A linear layer run in integers: the input is quantized per tensor and packed, the int8
/// weight (packed once) is multiplied exactly in int32, and the epilogue applies
/// Δx·Δw[j] and the float bias. A twin-quantized input (PTQ4ViT, after GELU) runs as two
/// integer GEMMs combined with a shift (``TwinGemm``); a per-token input gets its row steps
/// when it arrives, and they are applied after the GEMM (``PerTokenQuant``).
public final class Int8Linear: NormFusingLinearOp, @unchecked Sendable {
    public let weight: QuantizedWeight
    public let input: OperandQuant
    let packed: PackedWeight
    let colScale: [Float]

    public init(weight: QuantizedWeight, input: OperandQuant) {
        precondition(input.count == 1, "linear inputs are quantized per tensor")
        self.weight = weight; self.input = input
        packed = PackedWeight(values: weight.values, n: weight.outFeatures, k: weight.inFeatures)
        // A weight zero point would need Σ_k x·z terms; weights are symmetric (validated on load).
        precondition(!weight.quant.isAffine, "affine weights are not supported by the integer engine")
        colScale = (0..<weight.outFeatures).map { input.step(0) * weight.scale($0) }
    }

    public var inFeatures: Int { weight.inFeatures }
    public var outFeatures: Int { weight.outFeatures }
    public var parameterCount: Int { weight.values.count + (weight.bias?.count ?? 0) }

    public func forward(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        let k = inFeatures
        if case let .twin(t) = input {
            colScale.withUnsafeBufferPointer { cs in
                TwinGemm.run(x, lda: k, m: rows, quant: t[0], weight: packed, colScale: cs.baseAddress!,
                             bias: weight.bias.map { UnsafePointer($0.data) }, into: y, ldy: outFeatures)
            }
            return
        }
        if case let .perToken(scheme) = input {
            forwardPerToken(x, rows: rows, scheme: scheme, into: y)
            return
        }
        quantizeAndRun(x, rows: rows, quant: input.uniform, output: .float(y, ldy: outFeatures, accumulate: false))
    }

    /// Per-token input (of LayerNorm(x) when `norm` is given): row steps, rows divided by them and
    /// quantized with step 1 (``Int8Gemm/perTokenQuantizePackA(_:lda:m:k:scheme:norm:steps:into:)``),
    /// then the GEMM whose epilogue finishes each row: times its step plus the bias, and GELU or
    /// the residual add when asked (``Int8Gemm/Output/perToken(_:ldy:steps:bias:gelu:accumulate:)``,
    /// the same float operations as `vitq_per_token_finish`).
    func forwardPerToken(_ x: UnsafePointer<Float>, rows: Int, scheme: QuantScheme, norm: LayerNorm? = nil,
                         into y: UnsafeMutablePointer<Float>, gelu: Bool = false, accumulate: Bool = false) {
        let k = inFeatures, n = outFeatures
        let sizeA = Int8Gemm.packedASize(m: rows, k: k)
        ScratchPool.shared.with(bytes: (sizeA + rows) * 4) { buf in
            let pa = buf.pointer(Int32.self)
            let steps = UnsafeMutableRawPointer(pa + sizeA).assumingMemoryBound(to: Float.self)
            Int8Gemm.perTokenQuantizePackA(x, lda: k, m: rows, k: k, scheme: scheme, norm: norm, steps: steps, into: pa)
            let bias = weight.bias.map { UnsafePointer($0.data) }
            run(packedA: pa, rows: rows, output: .perToken(y, ldy: n, steps: steps, bias: bias, gelu: gelu, accumulate: accumulate),
                addsBias: false)
        }
    }

    /// y += x·Wᵀ + b through the epilogue (the sum is the same float add as the unfused path).
    public func forward(_ x: UnsafePointer<Float>, rows: Int, addingInto y: UnsafeMutablePointer<Float>) {
        if case let .perToken(scheme) = input { forwardPerToken(x, rows: rows, scheme: scheme, into: y, accumulate: true); return }
        guard case let .uniform(q) = input else { forwardThenAdd(x, rows: rows, into: y); return }
        quantizeAndRun(x, rows: rows, quant: q, output: .float(y, ldy: outFeatures, accumulate: true))
    }

    /// Quantizes and packs x [rows, in] with `quant`, then the GEMM through `output`.
    func quantizeAndRun(_ x: UnsafePointer<Float>, rows: Int, quant: TensorQuant, output: Int8Gemm.Output) {
        ScratchPool.shared.with(bytes: Int8Gemm.packedASize(m: rows, k: inFeatures) * 4) { buf in
            let pa = buf.pointer(Int32.self)
            Int8Gemm.quantizePackA(x, lda: inFeatures, m: rows, k: inFeatures, quant: quant, into: pa)
            run(packedA: pa, rows: rows, output: output)
        }
    }

    /// y = LayerNorm(x)·Wᵀ + b with the normalised rows quantized straight into the packed A.
    public func forward(normalizing x: UnsafePointer<Float>, with norm: LayerNorm, rows: Int, into y: UnsafeMutablePointer<Float>) {
        if case let .perToken(scheme) = input { forwardPerToken(x, rows: rows, scheme: scheme, norm: norm, into: y); return }
        guard case let .uniform(q) = input else {
            ScratchPool.shared.with(bytes: rows * inFeatures * 4) { buf in
                norm.forward(x, rows: rows, into: buf.pointer(Float.self))
                forward(buf.pointer(Float.self), rows: rows, into: y)
            }
            return
        }
        ScratchPool.shared.with(bytes: Int8Gemm.packedASize(m: rows, k: inFeatures) * 4) { buf in
            let pa = buf.pointer(Int32.self)
            Int8Gemm.layerNormQuantizePackA(x, norm: norm, m: rows, quant: q, into: pa)
            run(packedA: pa, rows: rows, output: .float(y, ldy: outFeatures, accumulate: false))
        }
    }

    /// y += next(GELU(LayerNorm(x)·Wᵀ + b)) in two integer GEMMs when `next` is an ``Int8Linear``
    /// with a per-tensor uniform input: this GEMM's epilogue applies GELU and quantizes into
    /// next's packed A. A twin-quantized input on either side declines (returns false). With a
    /// per-token input, GELU runs in this op's row-step pass and `next` adds into y itself.
    public func forwardMLP(normalizing x: UnsafePointer<Float>, with norm: LayerNorm, rows: Int, next: any LinearOp,
                           addingInto y: UnsafeMutablePointer<Float>) -> Bool {
        if case let .perToken(scheme) = input, next.inFeatures == outFeatures {
            // Per-token fc1: LayerNorm packed block by block, the GEMM with GELU in its row-step
            // pass; next adds into y.
            ScratchPool.shared.with(bytes: rows * outFeatures * 4) { buf in
                let hidden = buf.pointer(Float.self)
                forwardPerToken(x, rows: rows, scheme: scheme, norm: norm, into: hidden, gelu: true)
                next.forward(hidden, rows: rows, addingInto: y)
            }
            return true
        }
        guard case let .uniform(q) = input, let next = next as? Int8Linear, case let .uniform(nq) = next.input,
              next.inFeatures == outFeatures else { return false }
        let sizeA = Int8Gemm.packedASize(m: rows, k: inFeatures), sizeB = Int8Gemm.packedASize(m: rows, k: outFeatures)
        ScratchPool.shared.with(bytes: (sizeA + sizeB) * 4) { buf in
            let pa = buf.pointer(Int32.self), pHidden = pa + sizeA
            Int8Gemm.layerNormQuantizePackA(x, norm: norm, m: rows, quant: q, into: pa)
            run(packedA: pa, rows: rows, output: .geluPacked(pHidden, quant: nq))
            next.run(packedA: pHidden, rows: rows, output: .float(y, ldy: next.outFeatures, accumulate: true))
        }
        return true
    }

    func run(packedA: UnsafePointer<Int32>, rows: Int, output: Int8Gemm.Output, addsBias: Bool = true) {
        colScale.withUnsafeBufferPointer { cs in
            Int8Gemm.run(packedA: packedA, m: rows, weight: packed, colScale: cs.baseAddress!,
                         bias: addsBias ? weight.bias.map { UnsafePointer($0.data) } : nil, output: output)
        }
    }
}

/// The same layer without the packed kernel: the quantized input and weight multiplied as
/// exact integers in double precision (``IntegerReference``), then the engine's epilogue. It is
/// the reference the integer engine is checked against, bit for bit.
public final class FakeQuantLinear: LinearOp, @unchecked Sendable {
    public let weight: QuantizedWeight
    public let input: OperandQuant
    let weightValues: [Double]
    let colScale: [Float]

    public init(weight: QuantizedWeight, input: OperandQuant) {
        self.weight = weight; self.input = input
        weightValues = weight.values.map { Double($0) }
        colScale = (0..<weight.outFeatures).map { input.step(0) * weight.scale($0) }
    }

    public var inFeatures: Int { weight.inFeatures }
    public var outFeatures: Int { weight.outFeatures }
    public var parameterCount: Int { weight.values.count + (weight.bias?.count ?? 0) }

    public func forward(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        let k = inFeatures, n = outFeatures
        Parallel.forChunks(rows, minChunk: 16) { r in
            let xq = UnsafeMutablePointer<Double>.allocate(capacity: r.count * k), steps = UnsafeMutablePointer<Float>.allocate(capacity: r.count)
            defer { xq.deallocate(); steps.deallocate() }
            IntegerReference.quantize(x + r.lowerBound * k, rows: r.count, cols: k, ld: k, input, index: 0, into: xq, rowSteps: steps)
            // Per-token: the product without bias, then each row times its step plus the bias.
            let perToken = input.isPerToken
            let bias = weight.bias.map { UnsafePointer($0.data) }
            weightValues.withUnsafeBufferPointer { w in
                IntegerReference.product(xq, w.baseAddress!, m: r.count, n: n, k: k, colScale: { colScale[$0] },
                                         bias: perToken ? nil : bias, into: y + r.lowerBound * n, ldy: n)
            }
            guard perToken else { return }
            PerTokenQuant.finish(y + r.lowerBound * n, ldy: n, rows: r.count, n: n, steps: steps, bias: bias)
        }
    }
}
