import Foundation
import VitqModels

/// Liu et al.'s mixed precision (ALGORITHMS.md §2) on top of the searches at each candidate
/// width, through a ``SearchExecutor`` (so on the workers' shards, like the search): per module,
/// the sizes (`elements` units), the sensitivity (`nuclear` units, Liu) and each width's
/// perturbation (one-candidate `score` units of the width's final quantizers, MSE or Hessian),
/// then the allocation (``BitAllocation``) on the coordinator, and the network made of each
/// module's decisions at its width. Ops are searched in "parallel" mode, on FP inputs, so an
/// op's decision at a width does not depend on the other modules' widths.
public enum MixedPrecision {
    /// The module an op belongs to: `<block>.attn` for the ops under it (qkv, both attention
    /// products, proj), `<block>.mlp` for fc1 and fc2, else the op itself (patch embedding,
    /// head, Swin's patch merging).
    public static func module(of op: String) -> String {
        for part in [".attn.", ".mlp."] {
            if let r = op.range(of: part, options: .backwards) { return String(op[..<r.lowerBound]) + String(part.dropLast()) }
        }
        return op
    }

    /// The decisions of the allocation and its report, from `perWidth` (every op's decision at
    /// each of the recipe's candidate widths).
    public static func allocate(model: any SearchableModel, recipe: Recipe, perWidth: [Int: [String: OpDecision]],
                                executor: SearchExecutor) throws -> (decisions: [String: OpDecision], report: MixedPrecisionReport) {
        guard let metric = recipe.mixedPrecision else { preconditionFailure("allocate needs mixed_precision") }
        let ops = SearchCalibration.ops(model: model, recipe: recipe)
        var names: [String] = [], members: [String: [String]] = [:]
        for op in ops {
            let m = module(of: op)
            if members[m] == nil { names.append(m) }
            members[m, default: []].append(op)
        }
        let linears = Dictionary(model.linearOps.map { ($0.name, $0.op) }, uniquingKeysWith: { a, _ in a })
        var modules: [BitAllocation.Module] = [], sensitivities: [Double?] = []
        for name in names {
            let its = members[name]!
            let params = its.reduce(0) { n, op in n + ((linears[op] as? Linear).map { $0.inFeatures * $0.outFeatures } ?? 0) }
            var elements = 0.0
            for op in its { elements += try sum(.elements, op, executor) }
            var sigma: Double?
            if metric == .nuclear {
                // The attention map for an MSA module, else the module's last output.
                let source = its.first { $0.hasSuffix(".matmul2") } ?? its.last { linears[$0] != nil }!
                sigma = try sum(.nuclear, source, executor)
            }
            let omega = try recipe.candidateBits.map { b -> Double in
                var e = 0.0
                for op in its {
                    guard let d = perWidth[b]?[op] else { throw SearchExecutorError(description: "mixed precision: op \(op) has no decision at \(b) bits") }
                    e += try perturbation(d, metric: metric, model: model, executor: executor)
                }
                return (sigma ?? 1) * e
            }
            guard omega.allSatisfy({ $0.isFinite && $0 >= 0 }), sigma?.isFinite ?? true else {
                throw SearchExecutorError(description: "mixed precision: module \(name) has a non-finite sensitivity or perturbation")
            }
            modules.append(BitAllocation.Module(name: name, weightParameters: params, activationElements: elements, omega: omega))
            sensitivities.append(sigma)
        }
        let result = BitAllocation.allocate(modules, widths: recipe.candidateBits, averageBits: recipe.averageBits)
        var decisions: [String: OpDecision] = [:]
        for (i, name) in names.enumerated() { for op in members[name]! { decisions[op] = perWidth[result.bits[i]]![op]! } }
        let report = MixedPrecisionReport(metric: metric, budget: recipe.averageBits, widths: recipe.candidateBits,
                                          modules: modules, sensitivities: sensitivities, result: result)
        return (decisions, report)
    }

    static func sum(_ kind: StatisticsTask.Kind, _ op: String, _ executor: SearchExecutor) throws -> Double {
        let v = try executor.run(.statistics(StatisticsTask(op: op, kind: kind)), as: \.counts)
        guard v.count == 1 else { throw SearchExecutorError(description: "statistics \(kind.rawValue) of op \(op): \(v.count) values, expected 1") }
        return v[0]
    }

    /// Σ‖Ô − O‖² (nuclear) or Σ (∂L/∂O)²(Ô − O)² (fisher) of one op with its decision's
    /// quantizers, on FP inputs: a `score` unit whose one candidate is the decision's second
    /// operand unchanged (multiplier 1), summed over its groups.
    static func perturbation(_ d: OpDecision, metric: MixedPrecisionMetric, model: any SearchableModel, executor: SearchExecutor) throws -> Double {
        let isMatmul = d.op.hasSuffix(".matmul1") || d.op.hasSuffix(".matmul2")
        let groups = isMatmul ? model.attentionGeometry(String(d.op.dropLast(".matmul1".count)))!.heads : 1
        let task = SearchTask(op: d.op, operand: .second, candidates: CandidateSet(base: d.quantizers[1], multipliers: [1]),
                              current: d.quantizers, groups: groups, metric: metric == .nuclear ? .mse : .hessian)
        return try executor.run(.score(task), as: \.scores).values.reduce(0, +)
    }
}

/// What a mixed-precision allocation measured and chose: per module its sizes, sensitivity, Ω
/// at each width and width; the frontier; the averages. In `--json` (`mixed_precision`) and in
/// the quantized file's metadata.
public struct MixedPrecisionReport: Sendable {
    public var metric: MixedPrecisionMetric
    public var budget: Double
    public var widths: [Int]
    public var modules: [BitAllocation.Module]
    public var sensitivities: [Double?]
    public var result: BitAllocation.Result

    /// The report as JSON values.
    public var jsonObject: [String: Any] {
        [
            "metric": metric.rawValue, "average_bits_budget": budget, "candidate_bits": widths,
            "average_weight_bits": result.averageWeightBits, "average_activation_bits": result.averageActivationBits,
            "omega": result.omega, "lambda": result.lambda,
            "modules": modules.enumerated().map { i, m -> [String: Any] in
                var o: [String: Any] = ["module": m.name, "bits": result.bits[i], "weight_parameters": m.weightParameters,
                                        "activation_elements": m.activationElements, "omega": m.omega]
                if let s = sensitivities[i] { o["nuclear_norm"] = s }
                return o
            },
            "frontier": result.frontier.map { ["average_weight_bits": $0.averageWeightBits, "omega": $0.omega] },
        ]
    }

    /// ``jsonObject`` with sorted keys.
    public var canonicalJSON: String {
        String(decoding: try! JSONSerialization.data(withJSONObject: jsonObject, options: [.sortedKeys]), as: UTF8.self)
    }
}
