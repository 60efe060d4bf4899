import VitqData
/// timm model names whose architecture and preprocessing vitq knows without any config file.
public enum KnownModels {
    /// One entry of the table.
    public struct Entry: Sendable {
        public let name: String
        public let embedDim: Int, depth: Int, numHeads: Int, patchSize: Int
        public let distilled: Bool
        public let preprocess: PreprocessConfig
    }

    /// The table, by timm architecture name (without the pretrained tag).
    public static let table: [String: Entry] = {
        var t: [String: Entry] = [:]
        func add(_ n: String, _ e: Int, _ d: Int, _ h: Int, patch: Int = 16, distilled: Bool = false, _ p: PreprocessConfig) {
            t[n] = Entry(name: n, embedDim: e, depth: d, numHeads: h, patchSize: patch, distilled: distilled, preprocess: p)
        }
        let incep = PreprocessConfig.inception, inet = PreprocessConfig.imagenet
        add("vit_tiny_patch16_224", 192, 12, 3, incep)
        add("vit_small_patch16_224", 384, 12, 6, incep)
        add("vit_base_patch16_224", 768, 12, 12, incep)
        add("vit_base_patch32_224", 768, 12, 12, patch: 32, incep)
        add("vit_large_patch16_224", 1024, 24, 16, incep)
        add("vit_huge_patch14_224", 1280, 32, 16, patch: 14, incep)
        add("deit_tiny_patch16_224", 192, 12, 3, inet)
        add("deit_small_patch16_224", 384, 12, 6, inet)
        add("deit_base_patch16_224", 768, 12, 12, inet)
        add("deit_tiny_distilled_patch16_224", 192, 12, 3, distilled: true, inet)
        add("deit_small_distilled_patch16_224", 384, 12, 6, distilled: true, inet)
        add("deit_base_distilled_patch16_224", 768, 12, 12, distilled: true, inet)
        return t
    }()

    /// Short names accepted by `vitq synth --arch`.
    public static let synthAliases: [String: String] = [
        "vit-tiny": "vit_tiny_patch16_224", "vit-small": "vit_small_patch16_224",
        "vit-base": "vit_base_patch16_224", "deit-small": "deit_small_patch16_224",
        "deit-tiny": "deit_tiny_patch16_224", "deit-base": "deit_base_patch16_224",
        "vit-large": "vit_large_patch16_224", "vit-huge": "vit_huge_patch14_224",
        "deit-tiny-distilled": "deit_tiny_distilled_patch16_224", "deit-small-distilled": "deit_small_distilled_patch16_224",
        "deit-base-distilled": "deit_base_distilled_patch16_224",
    ]

    /// Looks up "arch" or "arch.pretrained_tag" (a timm model name, or a file stem).
    public static func lookup(_ fullName: String) -> Entry? {
        let arch = fullName.split(separator: ".", maxSplits: 1).first.map(String.init) ?? fullName
        return table[arch] ?? synthAliases[arch].flatMap { table[$0] }
    }
}
