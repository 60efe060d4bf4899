import Foundation
import VitqModels
import VitqQuant

/// Why a decision does not fit its op (one line, for the journal's message).
struct DecisionMismatch: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Checks an ``OpDecision`` read back from a journal, or received in a probe, against the op it
/// names, as strictly as a fresh result: the op is one the recipe quantizes, and its two
/// quantizers have the kinds, schemes (bits), granularities and scale counts the search
/// (`ScaleSearch.initialQuantizers`) or the calibrators (``RangeCalibration``) give that op,
/// every value finite (scales positive), zero points on the grid, and a bias of the op's output width.
struct DecisionCheck {
    let model: any SearchableModel
    /// Each op's grids come from the recipe as it applies to that op (``Recipe/forOp(_:)``).
    let recipe: Recipe
    /// Method `minmax`: no twin quantizers, the recipe's weight and matmul granularities.
    let calibrated: Bool
    let matmulGranularity: Granularity
    let ops: Set<String>
    private let linears: [String: any LinearOp]

    init(model: any SearchableModel, recipe: Recipe) {
        self.model = model
        self.recipe = recipe
        calibrated = recipe.method != "search"
        matmulGranularity = recipe.matmulGranularity
        ops = Set(SearchCalibration.ops(model: model, recipe: recipe))
        linears = Dictionary(model.linearOps.map { ($0.name, $0.op) }, uniquingKeysWith: { a, _ in a })
    }

    /// Throws a ``DecisionMismatch`` naming the field unless `d` fits its op.
    func validate(_ d: OpDecision) throws {
        guard ops.contains(d.op) else { throw DecisionMismatch("not an op this model and recipe search") }
        if let b = d.bits {
            guard recipe.mixedPrecision != nil, recipe.candidateBits.contains(b) else {
                throw DecisionMismatch("width \(b) is not a candidate width of this recipe\(recipe.mixedPrecision == nil ? " (it has no mixed_precision)" : "")")
            }
        } else if recipe.mixedPrecision != nil {
            throw DecisionMismatch("a mixed-precision run's decisions name their width")
        }
        guard d.quantizers.count == 2 else { throw DecisionMismatch("\(d.quantizers.count) quantizers, expected 2") }
        if let e = d.relativeError, !(e.isFinite && e >= 0) { throw DecisionMismatch("relative error \(e) is not a finite non-negative number") }
        if d.op.hasSuffix(".matmul1") || d.op.hasSuffix(".matmul2") {
            try validateMatmul(d)
        } else {
            try validateLinear(d)
        }
    }

    /// The settings `d` was searched with: its mixed-precision width's, or its module's.
    private func settings(_ d: OpDecision) -> SearchSettings {
        d.bits.map { recipe.atWidth($0).search } ?? recipe.forOp(d.op).search
    }

    private func validateMatmul(_ d: OpDecision) throws {
        let settings = settings(d)
        let isQK = d.op.hasSuffix(".matmul1")
        let block = String(d.op.dropLast(".matmul1".count))
        guard let geometry = model.attentionGeometry(block) else { throw DecisionMismatch("no attention block \(block)") }
        let heads = matmulGranularity == .perHead ? geometry.heads : 1
        // The calibrators give a one-head block one per-tensor scale (RangeCalibration).
        let granularity = calibrated && geometry.heads == 1 ? Granularity.perTensor : matmulGranularity
        if !isQK && settings.twin && !calibrated {
            try twin(d.quantizers[0], "A", count: heads, kind: .softmax, bits: settings.activationScheme.bits)
        } else {
            try uniform(d.quantizers[0], "A", scheme: isQK ? settings.activationScheme : settings.probsScheme, granularity: granularity, count: heads)
        }
        try uniform(d.quantizers[1], "B", scheme: settings.activationScheme, granularity: granularity, count: heads)
        if d.bias != nil { throw DecisionMismatch("a bias for a matmul") }
    }

    private func validateLinear(_ d: OpDecision) throws {
        let settings = settings(d)
        guard let lin = linears[d.op] else { throw DecisionMismatch("no linear op \(d.op)") }
        let n = lin.outFeatures
        let perChannel = settings.weightGranularity == .perChannel || (d.op.hasSuffix(".attn.qkv") && !calibrated)
        try uniform(d.quantizers[0], "weight", scheme: settings.weightScheme, granularity: perChannel ? .perChannel : .perTensor,
                    count: perChannel ? n : 1)
        let xs = settings.activationScheme
        if settings.activationGranularity == .perToken {
            guard case let .perToken(s) = d.quantizers[1], s == xs else { throw DecisionMismatch("input: expected per-token \(xs.bits)-bit") }
        } else if settings.twin && d.op.hasSuffix(".mlp.fc2") && !calibrated {
            try twin(d.quantizers[1], "input", count: 1, kind: .gelu, bits: xs.bits)
        } else {
            try uniform(d.quantizers[1], "input", scheme: xs, granularity: .perTensor, count: 1)
        }
        if let b = d.bias {
            guard b.count == n else { throw DecisionMismatch("bias has \(b.count) values, the op has \(n) outputs") }
            guard b.allSatisfy(\.isFinite) else { throw DecisionMismatch("bias has a non-finite value") }
        }
    }

    private func uniform(_ q: OperandQuant, _ what: String, scheme: QuantScheme, granularity: Granularity, count: Int) throws {
        guard case let .uniform(t) = q else { throw DecisionMismatch("\(what): expected a uniform quantizer") }
        guard t.scheme == scheme else {
            throw DecisionMismatch("\(what): \(t.scheme.bits)-bit scheme \(t.scheme), the recipe gives \(scheme.bits)-bit \(scheme)")
        }
        guard t.granularity == granularity else { throw DecisionMismatch("\(what): granularity \(t.granularity.rawValue), expected \(granularity.rawValue)") }
        guard t.scales.count == count else { throw DecisionMismatch("\(what): \(t.scales.count) scales, expected \(count)") }
        guard t.scales.allSatisfy({ $0.isFinite && $0 > 0 }) else { throw DecisionMismatch("\(what): a scale is not finite and positive") }
        guard t.zeroPoints.count == count, t.zeroPoints.allSatisfy({ (scheme.qmin...scheme.qmax).contains($0) }) else {
            throw DecisionMismatch("\(what): zero points do not fit the \(count) scales and the grid")
        }
    }

    private func twin(_ q: OperandQuant, _ what: String, count: Int, kind: TwinKind, bits: Int) throws {
        guard case let .twin(t) = q else { throw DecisionMismatch("\(what): expected a twin quantizer") }
        guard t.count == count else { throw DecisionMismatch("\(what): \(t.count) twin quantizers, expected \(count)") }
        guard t.allSatisfy({ $0.kind == kind && $0.bits == bits && $0.delta1.isFinite && $0.delta1 > 0 }) else {
            throw DecisionMismatch("\(what): expected \(kind.rawValue) twin quantizers of \(bits) bits with finite positive steps")
        }
    }
}
