import ArgumentParser
import VitqModels

/// Flags that fill in or override a model's config (see ModelConfigResolver for the order).
struct ModelOptions: ParsableArguments {
    @Option(help: "A known timm name (e.g. vit_tiny_patch16_224) when the file carries no config.")
    var arch: String?
    @Option(help: "Number of attention heads (overrides the config).")
    var heads: Int?
    @Option(help: "Normalisation mean, comma-separated (overrides the config).")
    var mean: String?
    @Option(help: "Normalisation std, comma-separated (overrides the config).")
    var std: String?
    @Option(name: .customLong("crop-pct"), help: "Center-crop fraction (overrides the config).")
    var cropPct: Double?

    static func floats(_ s: String?, _ name: String) throws -> [Float]? {
        guard let s else { return nil }
        let v = s.split(separator: ",").map { Float($0.trimmingCharacters(in: .whitespaces)) }
        guard !v.isEmpty, v.allSatisfy({ $0 != nil }) else { throw FlagError("--\(name) takes comma-separated numbers, got '\(s)'") }
        return v.map { $0! }
    }

    func validate() throws {
        // One value per RGB channel, finite (a NaN mean used to reach the output file's JSON as a
        // raw EncodingError), and std > 0.
        if let m = try Self.floats(mean, "mean"), m.count != 3 || !m.allSatisfy(\.isFinite) {
            throw FlagError("--mean takes 3 finite comma-separated numbers (R,G,B), got '\(mean ?? "")'")
        }
        if let s = try Self.floats(std, "std"), s.count != 3 || !s.allSatisfy({ $0.isFinite && $0 > 0 }) {
            throw FlagError("--std takes 3 finite comma-separated numbers > 0 (R,G,B), got '\(std ?? "")'")
        }
        if let h = heads, h < 1 { throw ValidationError("--heads must be positive") }
        if let c = cropPct, !(c > 0 && c <= 1) { throw FlagError("--crop-pct must be in (0, 1], got \(c)") }
    }

    var overrides: ModelOverrides {
        ModelOverrides(arch: arch, numHeads: heads, mean: try? Self.floats(mean, "mean"), std: try? Self.floats(std, "std"), cropPct: cropPct)
    }
}
