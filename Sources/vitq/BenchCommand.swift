import ArgumentParser
import Foundation
import VitqFormats
import VitqModels
import VitqQuant
import VitqRuntime
import VitqTensor

/// `vitq bench`: speed measurements with JSON output.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Benchmarks (JSON with --json).",
                                                    subcommands: [Fp32.self, GemmBench.self, ModelBench.self, SearchBench.self, DistributedBench.self])
}
