import Foundation
import VitqQuant

/// What `vitq report` shows, gathered from a quantized file, its calibration log (`quantize
/// --json`) and the logs of other runs measured for comparison. No I/O: the command reads the
/// files, ``ReportHTML`` renders this.
public struct QuantizationReport: Sendable {
    /// One quantized (or float) product of the model, in forward order.
    public struct Op: Sendable, Equatable {
        public var name: String
        /// `linear`, or `matmul` for an attention product (Q·Kᵀ is `…attn.matmul1`, P·V `…attn.matmul2`).
        public var kind: String
        /// The weight's bits (for a matmul: the second operand's); nil when the op stays in float.
        public var weightBits: Int?
        /// The input's bits (for a matmul: the first operand's); nil when it stays in float.
        public var inputBits: Int?
        /// How the input is quantized: `per_tensor`, `per_tensor affine`, `per_head`, `per_token`, `twin softmax|gelu`.
        public var inputQuantizer: String?
        /// The input quantizer's clipping, when it is one range: qmax·s on a symmetric signed grid, else
        /// the magnitude of its farther end.
        public var clip: Double?
        /// The search's relative output error ‖Ô − O‖ / ‖O‖ on the calibration images, from the log.
        public var relativeError: Double?
        /// The input's range and histogram on the calibration images, when the report was given the data.
        public var profile: ActivationProfile.Entry?
        public var isFloat: Bool { weightBits == nil }
    }

    /// One MSA or MLP module of a mixed-precision allocation.
    public struct Module: Sendable, Equatable {
        public var name: String
        public var bits: Int
        public var weightParameters: Int
        /// Ω at each candidate width (σ · perturbation).
        public var omega: [Double]
        /// Liu et al.'s nuclear-norm sensitivity (nuclear allocation only).
        public var nuclearNorm: Double?
    }

    /// A point of the (average weight bits, Ω) frontier.
    public struct FrontierPoint: Sendable, Equatable { public var averageWeightBits: Double, omega: Double }

    /// A measured run: its allocation's average weight bits and its accuracy.
    public struct Measured: Sendable, Equatable {
        public var source: String
        public var metric: String
        public var averageWeightBits: Double
        public var top1: Double?
        public var agreement: Double
    }

    /// The mixed-precision part, when the file was allocated.
    public struct Allocation: Sendable, Equatable {
        public var metric: String
        public var budget: Double
        public var widths: [Int]
        public var modules: [Module]
        public var frontier: [FrontierPoint]
        public var chosen: FrontierPoint
        public var averageActivationBits: Double
    }

    public var file: String
    public var fileBytes: Int
    public var sha256: String
    public var sourceName: String
    public var recipeName: String
    /// Selected fields of the log (accuracy, timings), printed as given.
    public var summary: [(label: String, value: String)]
    public var ops: [Op]
    public var allocation: Allocation?
    public var measured: [Measured]

    /// A malformed log or metadata entry, naming the file and the key.
    public struct ReportError: Error, CustomStringConvertible {
        public let description: String
        public init(_ file: String, _ detail: String) { description = "\(file): \(detail)" }
    }

    /// Gathers the report of `network` (read from `file`, `fileBytes` long, with `sha256`).
    /// `log` is the file's own `--json` output (its `sha256` must be the file's), `measured` other
    /// runs' logs (each with a `mixed_precision` allocation and an evaluation), `profile` the inputs'
    /// ranges on the calibration images.
    public init(file: String, fileBytes: Int, sha256: String, network: QuantizedNetwork, provenance: QModelProvenance,
                log: (path: String, object: [String: Any])?, measured: [(path: String, object: [String: Any])],
                profile: ActivationProfile?) throws {
        self.file = file; self.fileBytes = fileBytes; self.sha256 = sha256; sourceName = provenance.sourceName
        let recipe = try Self.object(provenance.recipeJSON, file, "recipe")
        recipeName = recipe["name"] as? String ?? "?"
        var errors: [String: Double] = [:]
        var lines: [(label: String, value: String)] = [("file", "\(file) (\(fileBytes) bytes)"), ("sha256", sha256),
                                                       ("source", provenance.sourceName), ("recipe", recipe["name"] as? String ?? "?")]
        if let (path, o) = log {
            guard let s = o["sha256"] as? String else { throw ReportError(path, "key 'sha256' is missing: not a `vitq quantize --json` log") }
            guard s == sha256 else { throw ReportError(path, "key 'sha256' is \(s), but \(file) is \(sha256): the log is of another file") }
            if let e = o["op_relative_error"] {
                guard let d = e as? [String: Any] else { throw ReportError(path, "key 'op_relative_error' must be an object") }
                for (k, v) in d {
                    guard let x = (v as? NSNumber)?.doubleValue, x.isFinite else { throw ReportError(path, "key 'op_relative_error.\(k)' must be a number") }
                    errors[k] = x
                }
            }
            func add(_ label: String, _ key: String, _ format: (Double) -> String) {
                if let v = (o[key] as? NSNumber)?.doubleValue { lines.append((label, format(v))) }
            }
            add("calibration", "calibration_images") { "\(Int($0)) images" }
            add("calibrated in", "seconds") { String(format: "%.1f s", $0) }
            add("fp32 top-1", "fp32_top1") { String(format: "%.2f %%", 100 * $0) }
            add("top-1", "top1") { String(format: "%.2f %%", 100 * $0) }
            add("agreement", "agreement") { String(format: "%.2f %% with FP32 top-1", 100 * $0) }
            add("drop", "drop_points") { String(format: "%.2f points", $0) }
            add("evaluated on", "eval_images") { "\(Int($0)) images" }
        }
        summary = lines
        ops = Self.ops(network, errors: errors, profile: profile)
        allocation = try provenance.mixedPrecisionJSON.map { try Self.allocation(Self.object($0, file, "mixed_precision"), source: "\(file): metadata 'mixed_precision'") }
        var points: [Measured] = []
        if let (path, o) = log, o["mixed_precision"] != nil, o["agreement"] != nil { points.append(try Self.measured(path, o)) }
        for (path, o) in measured { points.append(try Self.measured(path, o)) }
        self.measured = points
    }

    /// A mixed-precision run's log as a measured point.
    static func measured(_ path: String, _ o: [String: Any]) throws -> Measured {
        guard let mp = o["mixed_precision"] else {
            throw ReportError(path, "key 'mixed_precision' is missing: a measured point is a mixed-precision run's log")
        }
        guard let m = mp as? [String: Any], let metric = m["metric"] as? String,
              let bits = (m["average_weight_bits"] as? NSNumber)?.doubleValue, bits.isFinite else {
            throw ReportError(path, "key 'mixed_precision' must hold 'metric' and 'average_weight_bits'")
        }
        guard let agreement = (o["agreement"] as? NSNumber)?.doubleValue else {
            throw ReportError(path, "key 'agreement' is missing: the run was not evaluated (--eval-offset)")
        }
        return Measured(source: path, metric: metric, averageWeightBits: bits, top1: (o["top1"] as? NSNumber)?.doubleValue, agreement: agreement)
    }

    static func object(_ json: String, _ file: String, _ key: String) throws -> [String: Any] {
        guard let o = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] else {
            throw ReportError(file, "metadata '\(key)' is not a JSON object")
        }
        return o
    }

    /// The ops in forward order, each attention block's two products after its qkv.
    static func ops(_ net: QuantizedNetwork, errors: [String: Double], profile: ActivationProfile?) -> [Op] {
        var rows: [Op] = []
        let blocks = Set(net.base.attentionBlocks)
        for (name, _) in net.base.linearOps {
            var op = Op(name: name, kind: "linear", relativeError: errors[name], profile: profile?.entries[name])
            if case let .quantized(w, input)? = net.linear[name] {
                op.weightBits = w.quant.scheme.bits
                (op.inputBits, op.inputQuantizer, op.clip) = describe(input)
            }
            rows.append(op)
            let block = String(name.dropLast(".qkv".count))
            guard name.hasSuffix(".qkv"), blocks.contains(block) else { continue }
            var qk = Op(name: block + ".matmul1", kind: "matmul", relativeError: errors[block + ".matmul1"])
            var pv = Op(name: block + ".matmul2", kind: "matmul", relativeError: errors[block + ".matmul2"])
            if let a = net.attention[block] {
                qk.weightBits = a.k.scheme.bits; qk.inputBits = a.q.scheme.bits; qk.inputQuantizer = a.q.granularity.rawValue
                pv.weightBits = a.v.scheme.bits
                (pv.inputBits, pv.inputQuantizer, pv.clip) = describe(a.probs)
            }
            rows += [qk, pv]
        }
        return rows
    }

    /// An input quantizer's bits, a short description, and its clipping when it is one range.
    static func describe(_ q: OperandQuant) -> (Int, String, Double?) {
        switch q {
        case let .uniform(t):
            let affine = t.isAffine ? " affine" : ""
            guard t.scales.count == 1 else { return (t.scheme.bits, t.granularity.rawValue + affine, nil) }
            // Symmetric signed grids clip at qmax·s (−qmin·s is one extra step); others at their farther end.
            let z = t.zeroPoints.first ?? 0, s = Double(t.scales[0])
            let clip = t.scheme.signed && z == 0 ? s * Double(t.scheme.qmax) : s * Double(max(abs(t.scheme.qmin - z), abs(t.scheme.qmax - z)))
            return (t.scheme.bits, t.granularity.rawValue + affine, clip)
        case let .twin(ts):
            let t = ts[0]
            return (t.bits, "twin \(t.kind.rawValue)", ts.count == 1 ? Double(t.delta2) * Double(t.maxMagnitude) : nil)
        case let .perToken(s):
            return (s.bits, "per_token", nil)
        }
    }

    static func allocation(_ o: [String: Any], source: String) throws -> Allocation {
        func number(_ d: [String: Any], _ k: String) throws -> Double {
            guard let v = (d[k] as? NSNumber)?.doubleValue, v.isFinite else { throw ReportError(source, "key '\(k)' must be a number") }
            return v
        }
        guard let metric = o["metric"] as? String, let widths = o["candidate_bits"] as? [Int],
              let mods = o["modules"] as? [[String: Any]], let front = o["frontier"] as? [[String: Any]] else {
            throw ReportError(source, "needs 'metric', 'candidate_bits', 'modules' and 'frontier'")
        }
        let modules = try mods.map { m -> Module in
            guard let name = m["module"] as? String, let bits = m["bits"] as? Int, let params = m["weight_parameters"] as? Int,
                  let omega = (m["omega"] as? [NSNumber])?.map(\.doubleValue), omega.count == widths.count else {
                throw ReportError(source, "a module needs 'module', 'bits', 'weight_parameters' and one 'omega' per width")
            }
            return Module(name: name, bits: bits, weightParameters: params, omega: omega, nuclearNorm: (m["nuclear_norm"] as? NSNumber)?.doubleValue)
        }
        return Allocation(metric: metric, budget: try number(o, "average_bits_budget"), widths: widths, modules: modules,
                          frontier: try front.map { FrontierPoint(averageWeightBits: try number($0, "average_weight_bits"), omega: try number($0, "omega")) },
                          chosen: FrontierPoint(averageWeightBits: try number(o, "average_weight_bits"), omega: try number(o, "omega")),
                          averageActivationBits: try number(o, "average_activation_bits"))
    }
}
