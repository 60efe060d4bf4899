import ArgumentParser
import Foundation
import VitqTensor

/// The `vitq` command: post-training quantization of Vision Transformers.
@main
struct Vitq: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vitq",
        abstract: "Post-training quantization of Vision Transformers (ViT, DeiT, Swin) with exact int8 kernels and distributed calibration.",
        subcommands: [QuantizeCommand.self, CoordinatorCommand.self, WorkerCommand.self, KeygenCommand.self, EvalCommand.self, InspectCommand.self, BenchCommand.self, PlanCommand.self, SynthCommand.self, ReportCommand.self, ExportCommand.self, VersionCommand.self])
}

/// Runs `body`; any error becomes one line on stderr and exit code 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try checkKernelLevelVariable()
        try body()
    } catch let e as ExitCode {
        throw e
    } catch {
        FileHandle.standardError.write(Data("vitq: error: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

/// VITQ_ISA, when set, must name a kernel level: the dispatch (dispatch.c) reads it before any
/// kernel runs and would otherwise ignore a misspelt level.
func checkKernelLevelVariable() throws {
    guard let v = ProcessInfo.processInfo.environment["VITQ_ISA"], !["scalar", "avx2", "avxvnni", "avx512vnni"].contains(v) else { return }
    throw FlagError("VITQ_ISA=\(v): expected scalar, avx2, avxvnni or avx512vnni")
}

/// Options every compute command shares.
struct ThreadOptions: ParsableArguments {
    @Option(help: "Worker threads (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        if let t = threads, t > FlagLimits.maxThreads { throw FlagError("--threads \(t) is more than \(FlagLimits.maxThreads)") }
    }

    func apply() { if let t = threads { Parallel.threads = t } }
}
