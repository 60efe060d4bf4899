import ArgumentParser
import VitqModels

/// `vitq synth`: a random-weight model of a standard size, for benchmarks.
struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "synth", abstract: "Write a random-weight ViT/DeiT/Swin of a standard size.")

    @Option(help: "vit-tiny, vit-small, vit-base, vit-large, vit-huge, deit-{tiny,small,base}[-distilled], swin-tiny, swin-small, swin-base or swin-large (or a timm ViT name).")
    var arch: String
    @Option(help: "Output .safetensors file.")
    var out: String
    @Option(help: "Random seed.")
    var seed: UInt64 = 0
    @Flag(help: "Print one JSON object.")
    var json = false

    /// What `--json` prints: the file written and what it holds.
    struct Report: Encodable { var out: String, arch: String, seed: UInt64 }

    func run() throws {
        try reportingErrors {
            try OutputChecks.writableFolder(of: out, flag: "--out")
            try SyntheticModel.named(arch, seed: seed).write(to: out)
            if json { try printJSON(Report(out: out, arch: arch, seed: seed)) } else { print("wrote \(out)") }
        }
    }
}
