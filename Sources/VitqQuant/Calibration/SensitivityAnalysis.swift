import Foundation
import VitqModels

/// What partial quantization measured and chose (printed, in `--json` and in the file's metadata).
public struct SensitivityReport: Equatable, Sendable {
    /// One probe: `op` quantized alone (every other op float) on the calibration images.
    public struct Probe: Equatable, Sendable {
        public var op: String
        /// Mean KL divergence of the logits from FP32's, and top-1 agreement with FP32.
        public var kl: Double, agreement: Double
    }
    /// One point of the curve: the network with the `floatOps` most sensitive ops in float.
    public struct Point: Equatable, Sendable {
        public var floatOps: Int
        public var kl: Double, agreement: Double
    }
    /// Most sensitive first.
    public var ranking: [Probe] = []
    public var curve: [Point] = []
    /// The ops left in float, named ones first, then by rank.
    public var floatOps: [String] = []
    /// Whether `keep_float: auto` met its target within `max_float_ops` (nil: no target).
    public var targetMet: Bool?

    /// The report as a JSON-ready object.
    public var jsonObject: [String: Any] {
        var o: [String: Any] = [
            "float_ops": floatOps,
            "ranking": ranking.map { ["op": $0.op, "kl": $0.kl, "agreement": $0.agreement] as [String: Any] },
            "curve": curve.map { ["float_ops": $0.floatOps, "kl": $0.kl, "agreement": $0.agreement] as [String: Any] },
        ]
        if let targetMet { o["target_met"] = targetMet }
        return o
    }

    /// Canonical JSON (sorted keys) of ``jsonObject``.
    public var canonicalJSON: String {
        String(decoding: try! JSONSerialization.data(withJSONObject: jsonObject, options: [.sortedKeys]), as: UTF8.self)
    }
}

/// Wu et al.'s partial quantization by measured sensitivity (ALGORITHMS.md §1c): each
/// quantizable unit (a linear op, or an attention block's two products) is quantized alone and
/// the damage measured on the calibration images without labels (mean KL of the logits from
/// FP32's, top-1 agreement), one `probe` unit per op through the executor, so the probes run on
/// the workers' shards. The ranked ops then go to float one at a time until the recipe's target
/// holds on the calibration images (`keep_float: auto`), or the recipe's `keep_float: k` worst
/// (method `minmax`), after the ops it names (`keep_float_ops`).
public enum SensitivityAnalysis {
    /// The unit names of `decisions`: linear ops, and `<block>` for an attention block whose two
    /// products are both decided, in forward order.
    public static func units(model: any SearchableModel, decisions: [String: OpDecision]) -> [String] {
        units(model: model) { decisions[$0] != nil }
    }

    /// The unit names of the ops for which `has` holds, in forward order.
    static func units(model: any SearchableModel, has: (String) -> Bool) -> [String] {
        var units: [String] = []
        for (name, _) in model.linearOps {
            if name.hasSuffix(".attn.proj") {
                let block = String(name.dropLast(".proj".count))
                if has("\(block).matmul1") && has("\(block).matmul2") { units.append(block) }
            }
            if has(name) { units.append(name) }
        }
        return units
    }

    /// The decisions of unit `unit` (an attention block's: both products).
    static func decisions(of unit: String, in all: [String: OpDecision]) -> [OpDecision] {
        if let d = all[unit] { return [d] }
        return ["\(unit).matmul1", "\(unit).matmul2"].compactMap { all[$0] }
    }

    /// The mean KL of the logits from FP32's and the top-1 agreement on the calibration images
    /// with the ops of `decisions` quantized (one `probe` unit labelled `label`).
    public static func measure(_ label: String, _ decisions: [OpDecision], executor: SearchExecutor) throws -> (kl: Double, agreement: Double) {
        let v = try executor.run(.probe(ProbeTask(label: label, decisions: decisions)), as: \.counts)
        guard v.count == 3, v[2] > 0 else { throw SearchExecutorError(description: "probe \(label): \(v.count) sums, expected 3 over at least one image") }
        return (v[0] / v[2], v[1] / v[2])
    }

    /// ``measure(_:_:executor:)`` of the final decisions (label `final`): how well the quantized
    /// network fits FP32 on the calibration images, a criterion that needs no held-out images.
    public static func fit(_ decisions: [String: OpDecision], executor: SearchExecutor) throws -> (kl: Double, agreement: Double) {
        try measure("final", decisions.values.sorted { $0.op < $1.op }, executor: executor)
    }

    /// Throws a ``RecipeError`` naming `source` (the recipe's file or name) unless every op in the
    /// recipe's `keep_float_ops` is one the recipe quantizes in `model`, and every `module_bits`
    /// module covers at least one.
    public static func checkNamedOps(recipe: Recipe, model: any SearchableModel, source: String) throws {
        let ops = Set(SearchCalibration.ops(model: model, recipe: recipe))
        let all = units(model: model, has: ops.contains)
        if let bad = recipe.keepFloatOps.first(where: { !all.contains($0) }) {
            throw RecipeError(source, "key 'keep_float_ops': unknown op '\(bad)' (the quantized ops are linear op names and attention blocks such as \(all.first(where: { $0.hasSuffix(".attn") }) ?? "blocks.0.attn"))")
        }
        if let bad = recipe.moduleBits.keys.sorted().first(where: { m in !ops.contains { $0 == m || $0.hasPrefix(m + ".") } }) {
            throw RecipeError(source, "key 'module_bits': module '\(bad)' covers no op the recipe quantizes (modules are op names or their prefixes, such as blocks.0.attn or blocks.0.mlp)")
        }
    }

    /// Whether the recipe asks for anything this analysis does.
    public static func applies(to recipe: Recipe) -> Bool {
        recipe.keepFloatAuto || !recipe.keepFloatOps.isEmpty || (recipe.method == "minmax" && recipe.keepFloat > 0)
    }

    /// `decisions` less the ops the recipe leaves in float, and the report (nil when the recipe
    /// asks for no partial quantization of this kind). Throws a ``RecipeError`` for an unknown
    /// name in `keep_float_ops`.
    public static func apply(model: any SearchableModel, recipe: Recipe, decisions: [String: OpDecision],
                             executor: SearchExecutor, concurrency: Int = 1,
                             log: (@Sendable (String) -> Void)? = nil) throws -> ([String: OpDecision], SensitivityReport?) {
        guard applies(to: recipe) else { return (decisions, nil) }
        let all = units(model: model, decisions: decisions)
        try checkNamedOps(recipe: recipe, model: model, source: "recipe \(recipe.name)")
        var report = SensitivityReport()
        report.floatOps = recipe.keepFloatOps
        var remaining = decisions
        func drop(_ unit: String) { for d in Self.decisions(of: unit, in: decisions) { remaining[d.op] = nil } }
        recipe.keepFloatOps.forEach(drop)
        let toRank = recipe.keepFloatAuto || recipe.keepFloat > 0 ? all.filter { !recipe.keepFloatOps.contains($0) } : []
        func measure(_ label: String, _ ds: [OpDecision]) throws -> (kl: Double, agreement: Double) {
            try Self.measure(label, ds, executor: executor)
        }
        // Up to `concurrency` probes in flight: on workers, different ops' probes run at once.
        let counter = ProbeCounter()
        let measured = try Self.inParallel(toRank.count, concurrency: concurrency) { i -> SensitivityReport.Probe in
            let m = try measure(toRank[i], Self.decisions(of: toRank[i], in: decisions))
            log?(String(format: "probe %d/%d %@: KL %.5f, agreement %.4f", counter.next(), toRank.count, toRank[i], m.kl, m.agreement))
            return .init(op: toRank[i], kl: m.kl, agreement: m.agreement)
        }
        report.ranking = measured
        report.ranking.sort { $0.kl != $1.kl ? $0.kl > $1.kl : $0.op < $1.op }
        let ranked = report.ranking.map(\.op)
        if recipe.keepFloatAuto {
            func meets(_ p: SensitivityReport.Point) -> Bool {
                (recipe.targetAgreement.map { p.agreement >= $0 } ?? true) && (recipe.maxKL.map { p.kl <= $0 } ?? true)
            }
            var chosen = 0
            for k in 0...min(recipe.maxFloatOps, ranked.count) {
                var ds = remaining
                for unit in ranked.prefix(k) { for d in Self.decisions(of: unit, in: decisions) { ds[d.op] = nil } }
                let m = try measure("keep:\(k)", ds.values.sorted { $0.op < $1.op })
                let point = SensitivityReport.Point(floatOps: k + recipe.keepFloatOps.count, kl: m.kl, agreement: m.agreement)
                report.curve.append(point)
                log?(String(format: "partial quantization: %d op(s) in float: KL %.5f, agreement %.4f", point.floatOps, m.kl, m.agreement))
                chosen = k
                if meets(point) { report.targetMet = true; break }
            }
            if report.targetMet == nil { report.targetMet = false }
            ranked.prefix(chosen).forEach(drop)
            report.floatOps += ranked.prefix(chosen)
        } else if recipe.keepFloat > 0 {
            ranked.prefix(recipe.keepFloat).forEach(drop)
            report.floatOps += ranked.prefix(recipe.keepFloat)
        }
        return (remaining, report)
    }

    /// `body(i)` for i in 0..<n on up to `concurrency` threads, the results in index order (so
    /// nothing depends on which finished first); the first error is thrown.
    static func inParallel<T>(_ n: Int, concurrency: Int, _ body: @escaping (Int) throws -> T) throws -> [T] {
        let threads = max(1, min(concurrency, n))
        guard threads > 1 else { return try (0..<n).map(body) }
        let lock = NSLock()
        var results = [T?](repeating: nil, count: n), next = 0, failure: Error?
        let group = DispatchGroup()
        for _ in 0..<threads {
            group.enter()
            let t = Thread {
                while true {
                    let i: Int? = lock.withLock {
                        guard failure == nil, next < n else { return nil }
                        next += 1
                        return next - 1
                    }
                    guard let i else { break }
                    do {
                        let r = try body(i)
                        lock.withLock { results[i] = r }
                    } catch { lock.withLock { if failure == nil { failure = error } } }
                }
                group.leave()
            }
            t.stackSize = 8 << 20
            t.start()
        }
        group.wait()
        if let failure { throw failure }
        return results.map { $0! }
    }
}

/// Numbers the probes as they finish, for the log.
private final class ProbeCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func next() -> Int { lock.withLock { n += 1; return n } }
}
