import Foundation
import VitqFormats
import Yams

/// A problem with a recipe, naming the file and key.
public struct RecipeError: Error, CustomStringConvertible {
    public let description: String
    init(_ source: String, _ detail: String) { description = "\(source): \(detail)" }
}

/// What to quantize and how to calibrate it: a YAML file in Config/recipes/ (or any path).
///
/// Keys are strict: an unknown key, a wrong type or an out-of-range value is an error naming
/// the file and key. `base: NAME-OR-PATH` starts from another recipe and overrides its keys.
public struct Recipe: Equatable, Sendable {
    public var name = "custom"
    /// Calibration method. Only `minmax` so far.
    public var method = "minmax"
    public var weightBits = 8
    public var weightGranularity: Granularity = .perChannel
    /// `narrow` ([-127, 127]) or `full` ([-128, 127]).
    public var weightNarrow = true
    public var activationBits = 8
    public var activationNarrow = false
    /// Q, K, V and probabilities: `per_head` or `per_tensor`.
    public var matmulGranularity: Granularity = .perHead
    /// Whether softmax probabilities use a signed grid (else [0, 2^b − 1]).
    public var softmaxSigned = false
    public var quantizePatchEmbed = true
    public var quantizeHead = true
    /// Partial quantization: the number of linear ops with the largest output error left in float.
    public var keepFloat = 0

    public init() {}

    /// The keys a recipe file may hold.
    public static let keys: Set<String> = [
        "name", "base", "method", "weight_bits", "weight_granularity", "weight_range", "activation_bits",
        "activation_range", "matmul_granularity", "softmax_signed", "quantize_patch_embed", "quantize_head",
        "keep_float",
    ]

    public var weightScheme: QuantScheme { QuantScheme(bits: weightBits, signed: true, narrow: weightNarrow) }
    public var activationScheme: QuantScheme { QuantScheme(bits: activationBits, signed: true, narrow: activationNarrow) }
    public var probsScheme: QuantScheme { QuantScheme(bits: activationBits, signed: softmaxSigned, narrow: activationNarrow && softmaxSigned) }

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
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw RecipeError(path, "cannot read the recipe file")
        }
        return try parse(text, source: path, depth: depth)
    }

    /// Parses recipe YAML; `source` names it in errors.
    public static func parse(_ text: String, source: String) throws -> Recipe { try parse(text, source: source, depth: 0) }

    static func parse(_ text: String, source: String, depth: Int) throws -> Recipe {
        let node: Any?
        do { node = try Yams.load(yaml: text) } catch { throw RecipeError(source, "not valid YAML: \(error)") }
        guard let map = node as? [String: Any] else { throw RecipeError(source, "a recipe must be a YAML mapping of keys to values") }
        if let bad = map.keys.sorted().first(where: { !keys.contains($0) }) {
            throw RecipeError(source, "unknown key '\(bad)' (known: \(keys.sorted().joined(separator: ", ")))")
        }
        var r = Recipe()
        if let base = map["base"] {
            guard let b = base as? String else { throw RecipeError(source, "key 'base' must be a recipe name or path") }
            let dir = (source as NSString).deletingLastPathComponent
            let resolved = b.contains("/") && !b.hasPrefix("/") ? "\(dir)/\(b)" : b
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
        func choice(_ k: String, _ options: [String]) throws -> String? {
            guard let v = map[k] else { return nil }
            guard let s = v as? String, options.contains(s) else { throw RecipeError(source, "key '\(k)' must be one of \(options.joined(separator: ", ")), got '\(v)'") }
            return s
        }
        if let v = map["name"] {
            guard let s = v as? String, !s.isEmpty else { throw RecipeError(source, "key 'name' must be a non-empty string") }
            r.name = s
        }
        if let m = try choice("method", ["minmax"]) { r.method = m }
        if let b = try int("weight_bits", 2...8) { r.weightBits = b }
        if let g = try choice("weight_granularity", ["per_tensor", "per_channel"]) { r.weightGranularity = Granularity(rawValue: g)! }
        if let w = try choice("weight_range", ["narrow", "full"]) { r.weightNarrow = w == "narrow" }
        if let b = try int("activation_bits", 2...8) { r.activationBits = b }
        if let w = try choice("activation_range", ["narrow", "full"]) { r.activationNarrow = w == "narrow" }
        if let g = try choice("matmul_granularity", ["per_tensor", "per_head"]) { r.matmulGranularity = Granularity(rawValue: g)! }
        if let b = try bool("softmax_signed") { r.softmaxSigned = b }
        if let b = try bool("quantize_patch_embed") { r.quantizePatchEmbed = b }
        if let b = try bool("quantize_head") { r.quantizeHead = b }
        if let k = try int("keep_float", 0...10_000) { r.keepFloat = k }
        return r
    }

    /// The resolved recipe as canonical JSON (sorted keys), stored in quantized files.
    public var canonicalJSON: String {
        let obj: [String: Any] = [
            "name": name, "method": method, "weight_bits": weightBits, "weight_granularity": weightGranularity.rawValue,
            "weight_range": weightNarrow ? "narrow" : "full", "activation_bits": activationBits,
            "activation_range": activationNarrow ? "narrow" : "full", "matmul_granularity": matmulGranularity.rawValue,
            "softmax_signed": softmaxSigned, "quantize_patch_embed": quantizePatchEmbed, "quantize_head": quantizeHead,
            "keep_float": keepFloat,
        ]
        let data = try! JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
