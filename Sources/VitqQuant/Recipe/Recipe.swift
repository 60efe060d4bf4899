import Foundation
import VitqFormats

/// A problem with a recipe, naming the file and key.
public struct RecipeError: Error, CustomStringConvertible {
    public let description: String
    init(_ source: String, _ detail: String) { description = "\(source): \(detail)" }
}

/// What to quantize and how to calibrate it: a YAML file in Config/recipes/ (or any path).
///
/// Keys are strict: an unknown key, a wrong type or an out-of-range value is an error naming
/// the file and key. `base: NAME-OR-PATH` starts from another recipe and overrides its keys (a
/// path is relative to the recipe's own folder). The text is bounded before it is parsed
/// (``RecipeText``: size, nesting depth, aliases).
public struct Recipe: Equatable, Sendable {
    public var name = "custom"
    /// Calibration method: `minmax` (max ranges) or `search` (stage 1 collect + stage 2 scale search).
    public var method = "minmax"
    public var weightBits = 8
    public var weightGranularity: Granularity = .perChannel
    /// `narrow` ([-127, 127]) or `full` ([-128, 127]).
    public var weightNarrow = true
    public var activationBits = 8
    public var activationNarrow = false
    /// Linear-op inputs: `per_tensor` (calibrated) or `per_token` (dynamic, ``PerTokenQuant``).
    public var activationGranularity: Granularity = .perTensor
    /// `per_tensor_input_ops`: with per-token inputs, the linear ops (an op's name, or the end of
    /// it after a dot: `mlp.fc2` for every block's) whose inputs keep a calibrated grid, twin for
    /// fc2 with `twin` (PTQ4ViT's post-GELU grid).
    public var perTensorInputOps: [String] = []
    /// Q, K, V and probabilities: `per_head` or `per_tensor`.
    public var matmulGranularity: Granularity = .perHead
    /// Whether softmax probabilities use a signed grid (else [0, 2^b − 1]).
    public var softmaxSigned = false
    public var quantizePatchEmbed = true
    public var quantizeHead = true
    /// Partial quantization: the number of linear ops with the largest output error left in float.
    public var keepFloat = 0
    /// `keep_float: auto`: leave the ops the sensitivity probes rank worst in float, one at a
    /// time, until the calibration images meet ``targetAgreement`` and/or ``maxKL``
    /// (``SensitivityAnalysis``), at most ``maxFloatOps`` of them.
    public var keepFloatAuto = false
    /// `keep_float: auto`: the least top-1 agreement with FP32 on the calibration images.
    public var targetAgreement: Double?
    /// `keep_float: auto`: the largest mean KL divergence of the logits from FP32's.
    public var maxKL: Double?
    /// `keep_float: auto`: the most ops left in float.
    public var maxFloatOps = 8
    /// Ops left in float by name (ORT's `nodes_to_exclude`): linear ops, or an attention
    /// block's products by `<block>.matmul1` / `<block>.matmul2` (both stay float together).
    public var keepFloatOps: [String] = []
    /// `minmax`: how each activation's range is chosen from its calibration statistics.
    public var activationCalibrator = ActivationCalibrator.max
    /// `activation_calibrator: percentile`: the percentile of |x| (or of x at both ends) kept.
    public var percentile = 99.99
    /// `minmax`: how each weight row's (or tensor's) range is chosen.
    public var weightCalibrator = WeightCalibrator.max
    /// `minmax`: symmetric activation grids (zero point 0), or affine ones with zero points
    /// (`activation_symmetric: false`) for linear-op inputs and Q, K, V.
    public var activationSymmetric = true
    /// `search`: the metric, candidates, rounds and bias correction of stage 2.
    public var search = SearchSettings()
    /// `search`: the task loss whose gradient weights the Hessian metric (`fisher-argmax`,
    /// `fisher-sampled`, `ptq4vit-kl`), and for `fisher-sampled` the labels per image and seed.
    public var gradient = "fisher-argmax"
    public var gradientSamples = 4
    public var gradientSeed = 0
    /// `search`: images per calibration shard. Shards are fixed by this alone, so the result does
    /// not depend on how many workers share them.
    public var shardImages = 8
    /// `search`: SmoothQuant's migration strength α for the LayerNorm outputs (``ChannelSmoothing``); 0 = off.
    public var smoothAlpha: Float = 0
    /// `search`: the same migration for the GELU outputs (fc2's inputs), through a per-channel
    /// multiplier the model keeps before fc2 (``ChannelSmoothing``); 0 = off.
    public var geluSmoothAlpha: Float = 0
    /// `search`: with `smooth_alpha`, centre each LayerNorm output channel on its calibration
    /// range before scaling it (RepQ-ViT's per-channel zero points, folded; ``ChannelSmoothing``).
    public var smoothCenter = false
    /// Mixed precision: bit widths by module, for the weights and inputs of every op whose name
    /// is the module's or starts with it and a dot (`blocks.3.attn`: qkv, both attention
    /// products and proj; `blocks.3.mlp`: fc1 and fc2; `head`). The longest module wins; other
    /// ops keep `weight_bits` / `activation_bits`.
    public var moduleBits: [String: Int] = [:]
    /// Mixed precision by allocation (`mixed_precision`, method `search`): every op is searched
    /// at each of ``candidateBits``, then each module (``MixedPrecision/module(of:)``) gets the
    /// width that minimises Σ Ω within ``averageBits`` (``BitAllocation``).
    public var mixedPrecision: MixedPrecisionMetric?
    /// `mixed_precision`: the candidate widths, ascending.
    public var candidateBits = [4, 6, 8]
    /// `mixed_precision`: the budget, in average bits per weight parameter (and per activation element).
    public var averageBits = 6.0
    /// Block reconstruction after the search (`reconstruction: parallel` and its keys), nil when off.
    public var reconstruction: ReconstructionSettings?
    /// Whether the recipe smooths any activation channels (and so needs their input ranges).
    public var smoothsChannels: Bool { smoothAlpha > 0 || geluSmoothAlpha > 0 }

    public init() {}

    /// The keys a recipe file may hold.
    public static let keys: Set<String> = [
        "name", "base", "method", "weight_bits", "weight_granularity", "weight_range", "activation_bits",
        "activation_range", "matmul_granularity", "softmax_signed", "quantize_patch_embed", "quantize_head",
        "keep_float", "metric", "search_alpha", "search_beta", "search_candidates", "search_rounds", "bias_correction",
        "twin", "gradient", "gradient_samples", "gradient_seed", "shard_images", "ranking_weight", "ranking_margin",
        "smooth_alpha", "gelu_smooth_alpha", "smooth_center", "activation_granularity",
        "activation_calibrator", "percentile", "weight_calibrator", "activation_symmetric",
        "target_agreement", "max_kl", "max_float_ops", "keep_float_ops", "module_bits", "per_tensor_input_ops",
        "mixed_precision", "candidate_bits", "average_bits",
        "reconstruction", "reconstruction_iterations", "reconstruction_batch", "reconstruction_lr", "reconstruction_step_lr",
        "rounding_weight", "rounding_warmup", "fisher_weight", "qdrop", "reconstruction_seed",
    ]

    /// The keys that tune block reconstruction (they need `reconstruction`).
    static let reconstructionKeys = ["reconstruction_iterations", "reconstruction_batch", "reconstruction_lr", "reconstruction_step_lr",
                                     "rounding_weight", "rounding_warmup", "fisher_weight", "qdrop", "reconstruction_seed"]

    public var weightScheme: QuantScheme { QuantScheme(bits: weightBits, signed: true, narrow: weightNarrow) }
    public var activationScheme: QuantScheme { QuantScheme(bits: activationBits, signed: true, narrow: activationNarrow) }
    public var probsScheme: QuantScheme { QuantScheme(bits: activationBits, signed: softmaxSigned, narrow: activationNarrow && softmaxSigned) }

    /// The `module_bits` width of `op`, if a module covers it (the longest such module).
    public func moduleBits(for op: String) -> Int? {
        moduleBits.keys.filter { op == $0 || op.hasPrefix($0 + ".") }.max { $0.count < $1.count }.map { moduleBits[$0]! }
    }

    /// Whether `op`'s input keeps a calibrated grid under per-token inputs (``perTensorInputOps``).
    public func keepsCalibratedInput(_ op: String) -> Bool {
        activationGranularity == .perToken && perTensorInputOps.contains { op == $0 || op.hasSuffix("." + $0) }
    }

    /// The recipe as it applies to `op`: its module's width (``moduleBits``) in place of
    /// `weight_bits` and `activation_bits`, and a calibrated input for an op of ``perTensorInputOps``.
    public func forOp(_ op: String) -> Recipe {
        let bits = moduleBits(for: op), calibrated = keepsCalibratedInput(op)
        guard bits != nil || calibrated else { return self }
        var r = self
        if let b = bits { r.weightBits = b; r.activationBits = b; r.moduleBits = [:] }
        if calibrated { r.activationGranularity = .perTensor; r.perTensorInputOps = [] }
        r.syncSearchSchemes()
        return r
    }

    /// The recipe with every op at `bits` (one width of a mixed-precision search).
    public func atWidth(_ bits: Int) -> Recipe {
        var r = self
        r.weightBits = bits; r.activationBits = bits; r.moduleBits = [:]; r.mixedPrecision = nil
        r.syncSearchSchemes()
        return r
    }

    /// The directories searched for built-in recipe names, in order: `$VITQ_RECIPES`, then
    /// Config/recipes of the checkout the binary was built in (…/.build/release/vitq), then
    /// share/vitq/recipes beside an installed binary's bin/.
    public static var searchPath: [String] {
        var dirs: [String] = []
        if let env = ProcessInfo.processInfo.environment["VITQ_RECIPES"] { dirs.append(env) }
        let exe = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath().deletingLastPathComponent()
        for up in 1...4 {
            var u = exe
            for _ in 0..<up { u = u.deletingLastPathComponent() }
            dirs.append(u.appendingPathComponent("Config/recipes").path)
        }
        dirs.append(exe.deletingLastPathComponent().appendingPathComponent("share/vitq/recipes").path)
        dirs.append(FileManager.default.currentDirectoryPath + "/Config/recipes")
        return dirs
    }

    /// Loads a built-in recipe by name (`minmax-w8a8`) or a YAML file by path.
    public static func load(_ nameOrPath: String) throws -> Recipe {
        try load(nameOrPath, depth: 0)
    }

    static func load(_ nameOrPath: String, depth: Int) throws -> Recipe {
        guard depth < 8 else { throw RecipeError(nameOrPath, "recipe 'base' chain is longer than 8 (a cycle?)") }
        let path: String
        if nameOrPath.contains("/") || nameOrPath.hasSuffix(".yaml") || nameOrPath.hasSuffix(".yml") {
            path = nameOrPath
        } else if let found = searchPath.map({ "\($0)/\(nameOrPath).yaml" }).first(where: { FileManager.default.fileExists(atPath: $0) }) {
            path = found
        } else {
            throw RecipeError(nameOrPath, "no built-in recipe of that name (looked in \(searchPath.joined(separator: ", ")))")
        }
        return try parse(try RecipeText.read(path), source: path, depth: depth)
    }

    /// Parses recipe YAML; `source` names it in errors.
    public static func parse(_ text: String, source: String) throws -> Recipe { try parse(text, source: source, depth: 0) }

    static func parse(_ text: String, source: String, depth: Int) throws -> Recipe {
        let map = try RecipeText.mapping(text, source: source)
        if let bad = map.keys.sorted().first(where: { !keys.contains($0) }) {
            throw RecipeError(source, "unknown key '\(bad)' (known: \(keys.sorted().joined(separator: ", ")))")
        }
        var r = Recipe()
        if let base = map["base"] {
            guard let b = base as? String else { throw RecipeError(source, "key 'base' must be a recipe name or path") }
            // A path (with a '/' or a .yaml/.yml suffix) is relative to this recipe's own folder;
            // a bare name is a built-in recipe.
            let dir = (source as NSString).deletingLastPathComponent
            let isPath = b.contains("/") || b.hasSuffix(".yaml") || b.hasSuffix(".yml")
            let resolved = isPath && !b.hasPrefix("/") && !dir.isEmpty ? "\(dir)/\(b)" : b
            r = try load(resolved, depth: depth + 1)
        }
        func int(_ k: String, _ range: ClosedRange<Int>) throws -> Int? {
            guard let v = map[k] else { return nil }
            guard let i = v as? Int, range.contains(i) else { throw RecipeError(source, "key '\(k)' must be an integer in \(range.lowerBound)...\(range.upperBound), got '\(v)'") }
            return i
        }
        func bool(_ k: String) throws -> Bool? {
            guard let v = map[k] else { return nil }
            guard let b = v as? Bool else { throw RecipeError(source, "key '\(k)' must be true or false, got '\(v)'") }
            return b
        }
        func float(_ k: String, _ range: ClosedRange<Double>) throws -> Float? {
            guard let v = map[k] else { return nil }
            let d = (v as? Double) ?? (v as? Int).map(Double.init)
            guard let d, range.contains(d) else { throw RecipeError(source, "key '\(k)' must be a number in \(range.lowerBound)...\(range.upperBound), got '\(v)'") }
            return Float(d)
        }
        func choice(_ k: String, _ options: [String]) throws -> String? {
            guard let v = map[k] else { return nil }
            guard let s = v as? String, options.contains(s) else { throw RecipeError(source, "key '\(k)' must be one of \(options.joined(separator: ", ")), got '\(v)'") }
            return s
        }
        if let v = map["name"] {
            guard let s = v as? String, !s.isEmpty else { throw RecipeError(source, "key 'name' must be a non-empty string") }
            r.name = s
        }
        if let m = try choice("method", ["minmax", "search"]) { r.method = m }
        if let b = try int("weight_bits", 2...8) { r.weightBits = b }
        if let g = try choice("weight_granularity", ["per_tensor", "per_channel"]) { r.weightGranularity = Granularity(rawValue: g)! }
        if let w = try choice("weight_range", ["narrow", "full"]) { r.weightNarrow = w == "narrow" }
        if let b = try int("activation_bits", 2...8) { r.activationBits = b }
        if let w = try choice("activation_range", ["narrow", "full"]) { r.activationNarrow = w == "narrow" }
        if let g = try choice("activation_granularity", ["per_tensor", "per_token"]) { r.activationGranularity = Granularity(rawValue: g)! }
        if let g = try choice("matmul_granularity", ["per_tensor", "per_head"]) { r.matmulGranularity = Granularity(rawValue: g)! }
        if let b = try bool("softmax_signed") { r.softmaxSigned = b }
        if let b = try bool("quantize_patch_embed") { r.quantizePatchEmbed = b }
        if let b = try bool("quantize_head") { r.quantizeHead = b }
        if map["keep_float"] as? String == "auto" {
            r.keepFloat = 0; r.keepFloatAuto = true
        } else if let k = try int("keep_float", 0...10_000) { r.keepFloat = k; r.keepFloatAuto = false }
        if let v = map["target_agreement"] {
            guard let d = (v as? Double) ?? (v as? Int).map(Double.init), d > 0, d <= 1 else {
                throw RecipeError(source, "key 'target_agreement' must be a fraction in (0, 1], got '\(v)'")
            }
            r.targetAgreement = d
        }
        if let v = map["max_kl"] {
            guard let d = (v as? Double) ?? (v as? Int).map(Double.init), d > 0, d.isFinite else {
                throw RecipeError(source, "key 'max_kl' must be a number above 0, got '\(v)'")
            }
            r.maxKL = d
        }
        if let n = try int("max_float_ops", 1...10_000) { r.maxFloatOps = n }
        if let v = map["keep_float_ops"] {
            guard let names = v as? [Any], names.count <= 10_000,
                  let ops = names.map({ $0 as? String }) as? [String], ops.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 256 }) else {
                throw RecipeError(source, "key 'keep_float_ops' must be a list of op names, got '\(v)'")
            }
            if let twice = ops.first(where: { op in ops.filter { $0 == op }.count > 1 }) {
                throw RecipeError(source, "key 'keep_float_ops': op '\(twice)' is named twice")
            }
            r.keepFloatOps = ops
        }
        if let v = map["per_tensor_input_ops"] {
            guard let names = v as? [Any], names.count <= 10_000,
                  let ops = names.map({ $0 as? String }) as? [String], ops.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 256 }) else {
                throw RecipeError(source, "key 'per_tensor_input_ops' must be a list of op names, got '\(v)'")
            }
            r.perTensorInputOps = ops
        }
        if let v = map["module_bits"] {
            guard let m = v as? [String: Any], m.count <= 10_000 else { throw RecipeError(source, "key 'module_bits' must be a mapping of module names to bit widths, got '\(v)'") }
            var bits: [String: Int] = [:]
            for (name, b) in m {
                guard !name.isEmpty, name.utf8.count <= 256 else { throw RecipeError(source, "key 'module_bits': a module name must be 1 to 256 bytes") }
                guard let i = b as? Int, (2...8).contains(i) else { throw RecipeError(source, "key 'module_bits': module '\(name)' must have an integer width in 2...8, got '\(b)'") }
                bits[name] = i
            }
            r.moduleBits = bits
        }
        if let m = try choice("mixed_precision", MixedPrecisionMetric.allCases.map(\.rawValue)) { r.mixedPrecision = MixedPrecisionMetric(rawValue: m)! }
        if let v = map["candidate_bits"] {
            guard let list = v as? [Any], let bits = list.map({ $0 as? Int }) as? [Int], bits.count >= 2, bits.allSatisfy({ (2...8).contains($0) }),
                  bits == bits.sorted(), Set(bits).count == bits.count else {
                throw RecipeError(source, "key 'candidate_bits' must be a list of at least 2 distinct widths in 2...8, ascending, got '\(v)'")
            }
            r.candidateBits = bits
        }
        if let v = map["average_bits"] {
            guard let d = (v as? Double) ?? (v as? Int).map(Double.init), d.isFinite else {
                throw RecipeError(source, "key 'average_bits' must be a number, got '\(v)'")
            }
            r.averageBits = d
        }
        if let c = try choice("activation_calibrator", ActivationCalibrator.allCases.map(\.rawValue)) { r.activationCalibrator = ActivationCalibrator(rawValue: c)! }
        if let v = map["percentile"] {
            guard let d = (v as? Double) ?? (v as? Int).map(Double.init), d > 0, d <= 100 else {
                throw RecipeError(source, "key 'percentile' must be a number in (0, 100], got '\(v)'")
            }
            guard r.activationCalibrator == .percentile else { throw RecipeError(source, "key 'percentile' needs 'activation_calibrator: percentile'") }
            r.percentile = d
        }
        if let c = try choice("weight_calibrator", WeightCalibrator.allCases.map(\.rawValue)) { r.weightCalibrator = WeightCalibrator(rawValue: c)! }
        if let b = try bool("activation_symmetric") { r.activationSymmetric = b }
        if let m = try choice("metric", SearchMetric.allCases.map(\.rawValue)) { r.search.metric = SearchMetric(rawValue: m)! }
        if let a = try float("search_alpha", 0.001...10) { r.search.alpha = a }
        if let b = try float("search_beta", 0.001...10) { r.search.beta = b }
        if let n = try int("search_candidates", 1...10_000) { r.search.candidates = n }
        if let n = try int("search_rounds", 1...100) { r.search.rounds = n }
        if let b = try bool("bias_correction") { r.search.biasCorrection = b }
        if let b = try bool("twin") { r.search.twin = b }
        if let g = try choice("gradient", ["fisher-argmax", "fisher-sampled", "ptq4vit-kl"]) { r.gradient = g }
        if let n = try int("gradient_samples", 1...1000) { r.gradientSamples = n }
        if let n = try int("gradient_seed", 0...Int(Int32.max)) { r.gradientSeed = n }
        if let n = try int("shard_images", 1...100_000) { r.shardImages = n }
        if let w = try float("ranking_weight", 0...1000) { r.search.rankingWeight = w }
        if let m = try float("ranking_margin", 0...1000) { r.search.rankingMargin = m }
        if let a = try float("smooth_alpha", 0...1) { r.smoothAlpha = a }
        if let a = try float("gelu_smooth_alpha", 0...1) { r.geluSmoothAlpha = a }
        if let b = try bool("smooth_center") { r.smoothCenter = b }
        if r.smoothCenter && r.smoothAlpha == 0 { throw RecipeError(source, "key 'smooth_center' needs 'smooth_alpha' above 0") }
        if r.keepFloatAuto && r.targetAgreement == nil && r.maxKL == nil {
            throw RecipeError(source, "key 'keep_float': auto needs 'target_agreement' or 'max_kl'")
        }
        if !r.keepFloatAuto, let key = ["target_agreement", "max_kl", "max_float_ops"].first(where: { map[$0] != nil }) {
            throw RecipeError(source, "key '\(key)' needs 'keep_float: auto'")
        }
        if r.method == "search", let key = ["activation_calibrator", "weight_calibrator", "activation_symmetric"].first(where: { map[$0] != nil }) {
            throw RecipeError(source, "key '\(key)' applies to method 'minmax' (the search chooses its own scales)")
        }
        if !r.perTensorInputOps.isEmpty && r.activationGranularity != .perToken {
            throw RecipeError(source, "key 'per_tensor_input_ops' needs 'activation_granularity: per_token'")
        }
        if !r.activationSymmetric && r.activationGranularity == .perToken {
            throw RecipeError(source, "key 'activation_symmetric': per-token inputs are symmetric")
        }
        if r.method == "search" && r.matmulGranularity != .perHead {
            throw RecipeError(source, "key 'matmul_granularity' must be per_head with method 'search' (heads are searched independently)")
        }
        if r.mixedPrecision == nil, let key = ["candidate_bits", "average_bits"].first(where: { map[$0] != nil }) {
            throw RecipeError(source, "key '\(key)' needs 'mixed_precision'")
        }
        if r.mixedPrecision != nil {
            guard r.method == "search" else { throw RecipeError(source, "key 'mixed_precision' needs method 'search' (each width is searched)") }
            guard r.moduleBits.isEmpty else { throw RecipeError(source, "key 'module_bits' and 'mixed_precision' exclude each other (the allocation sets the widths)") }
            guard (Double(r.candidateBits.first!)...Double(r.candidateBits.last!)).contains(r.averageBits) else {
                throw RecipeError(source, "key 'average_bits' must be within the candidate widths \(r.candidateBits.first!)...\(r.candidateBits.last!), got \(r.averageBits)")
            }
        }
        if let m = try choice("reconstruction", ["none"] + ReconstructionSettings.Mode.allCases.map(\.rawValue)) {
            r.reconstruction = m == "none" ? nil : (r.reconstruction ?? ReconstructionSettings())
            r.reconstruction?.mode = ReconstructionSettings.Mode(rawValue: m) ?? .parallel
        }
        if var rs = r.reconstruction {
            if let n = try int("reconstruction_iterations", 1...1_000_000) { rs.iterations = n }
            if let n = try int("reconstruction_batch", 1...4096) { rs.batchImages = n }
            if let v = try float("reconstruction_lr", 0...1) { rs.roundingRate = v }
            if let v = try float("reconstruction_step_lr", 0...1) { rs.stepRate = v }
            if let v = try float("rounding_weight", 0...1000) { rs.roundingWeight = v }
            if let v = try float("rounding_warmup", 0...0.99) { rs.warmup = v }
            if let v = try float("fisher_weight", 0...1000) { rs.fisherWeight = v }
            if let v = try float("qdrop", 0...1) { rs.dropProbability = v }
            if let n = try int("reconstruction_seed", 0...Int(Int32.max)) { rs.seed = n }
            guard r.method == "search" else { throw RecipeError(source, "key 'reconstruction' needs method 'search' (it starts from the searched quantizers and stage 1's data)") }
            r.reconstruction = rs
        } else if let key = reconstructionKeys.first(where: { map[$0] != nil }) {
            throw RecipeError(source, "key '\(key)' needs 'reconstruction: parallel'")
        }
        guard r.search.alpha < r.search.beta else { throw RecipeError(source, "key 'search_alpha' must be below 'search_beta'") }
        r.syncSearchSchemes()
        return r
    }

    /// Copies the grids and granularity into the search settings.
    mutating func syncSearchSchemes() {
        search.weightGranularity = weightGranularity
        search.weightScheme = weightScheme
        search.activationScheme = activationScheme
        search.activationGranularity = activationGranularity
        search.probsScheme = probsScheme
    }

    /// The resolved recipe as canonical JSON (sorted keys), stored in quantized files.
    public var canonicalJSON: String {
        var obj: [String: Any] = [
            "name": name, "method": method, "weight_bits": weightBits, "weight_granularity": weightGranularity.rawValue,
            "weight_range": weightNarrow ? "narrow" : "full", "activation_bits": activationBits,
            "activation_range": activationNarrow ? "narrow" : "full", "matmul_granularity": matmulGranularity.rawValue,
            "softmax_signed": softmaxSigned, "quantize_patch_embed": quantizePatchEmbed, "quantize_head": quantizeHead,
            "keep_float": keepFloat,
        ]
        // Written only when not the default, so files of earlier recipes keep their bytes.
        if activationGranularity != .perTensor { obj["activation_granularity"] = activationGranularity.rawValue }
        if keepFloatAuto {
            obj["keep_float"] = "auto"; obj["max_float_ops"] = maxFloatOps
            if let targetAgreement { obj["target_agreement"] = targetAgreement }
            if let maxKL { obj["max_kl"] = maxKL }
        }
        if !keepFloatOps.isEmpty { obj["keep_float_ops"] = keepFloatOps }
        if !moduleBits.isEmpty { obj["module_bits"] = moduleBits }
        if !perTensorInputOps.isEmpty { obj["per_tensor_input_ops"] = perTensorInputOps }
        if let mixedPrecision {
            obj["mixed_precision"] = mixedPrecision.rawValue; obj["candidate_bits"] = candidateBits; obj["average_bits"] = averageBits
        }
        if method == "minmax" {
            obj["shard_images"] = shardImages
            obj["activation_calibrator"] = activationCalibrator.rawValue
            if activationCalibrator == .percentile { obj["percentile"] = percentile }
            if weightCalibrator != .max { obj["weight_calibrator"] = weightCalibrator.rawValue }
            if !activationSymmetric { obj["activation_symmetric"] = false }
        }
        if method == "search" {
            obj["metric"] = search.metric.rawValue; obj["search_alpha"] = Double(search.alpha); obj["search_beta"] = Double(search.beta)
            obj["search_candidates"] = search.candidates; obj["search_rounds"] = search.rounds
            obj["bias_correction"] = search.biasCorrection; obj["twin"] = search.twin; obj["gradient"] = gradient
            obj["gradient_samples"] = gradientSamples; obj["gradient_seed"] = gradientSeed; obj["shard_images"] = shardImages
            obj["ranking_weight"] = Double(search.rankingWeight); obj["ranking_margin"] = Double(search.rankingMargin)
            if smoothAlpha > 0 { obj["smooth_alpha"] = Double(smoothAlpha) }
            if geluSmoothAlpha > 0 { obj["gelu_smooth_alpha"] = Double(geluSmoothAlpha) }
            if smoothCenter { obj["smooth_center"] = true }
            if let reconstruction { obj.merge(reconstruction.jsonFields) { a, _ in a } }
        }
        let data = try! JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}

/// How a calibrated activation's range is chosen (Wu et al. §1; ALGORITHMS.md §1b).
public enum ActivationCalibrator: String, CaseIterable, Sendable {
    /// The largest |x| (or the extremes, affine) seen.
    case max
    /// The recipe's `percentile` of the histogram.
    case percentile
    /// TensorRT's KL-divergence threshold search over the histogram.
    case entropy
    /// The threshold with the least expected squared quantization error under the histogram.
    case mse
}

/// The sensitivity a mixed-precision allocation weighs each module's perturbation by.
public enum MixedPrecisionMetric: String, CaseIterable, Sendable {
    /// Liu et al.: Ω = σ · Σ‖Ô − O‖², σ the module's nuclear norm (attention map, or output features).
    case nuclear
    /// Ω = Σ (∂L/∂O)²(Ô − O)², the task-loss-weighted error of the Hessian-guided metric.
    case fisher
}

/// How a weight's range is chosen.
public enum WeightCalibrator: String, CaseIterable, Sendable {
    /// max |w| per output channel (or over the tensor).
    case max
    /// The threshold with the least squared quantization error of the weights themselves.
    case mse
}
