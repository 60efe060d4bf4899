import ArgumentParser

/// `vitq bench`: speed measurements with JSON output.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bench", abstract: "Benchmarks (JSON with --json).",
                                                    subcommands: [Fp32.self, GemmBench.self, ModelBench.self, SearchBench.self, DistributedBench.self])
}
