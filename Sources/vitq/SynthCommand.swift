import ArgumentParser
import VitqModels

/// `vitq synth`: a random-weight model of a standard size, for benchmarks.
struct SynthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "synth", abstract: "Write a random-weight ViT/DeiT of a standard size.")

    @Option(help: "vit-tiny, vit-small, vit-base, deit-tiny, deit-small or deit-base (or a timm name).")
    var arch: String
    @Option(help: "Output .safetensors file.")
    var out: String
    @Option(help: "Random seed.")
    var seed: UInt64 = 0

    func run() throws {
        try reportingErrors {
            try SyntheticModel.vit(arch: arch, seed: seed).write(to: out)
            print("wrote \(out)")
        }
    }
}
