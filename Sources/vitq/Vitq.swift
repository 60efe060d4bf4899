import ArgumentParser
import Foundation
import VitqTensor

/// The `vitq` command: post-training quantization of Vision Transformers.
@main
struct Vitq: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vitq",
        abstract: "Post-training quantization of Vision Transformers (ViT, DeiT, Swin) with exact int8 kernels and distributed calibration.",
        subcommands: [QuantizeCommand.self, CoordinatorCommand.self, WorkerCommand.self, KeygenCommand.self, EvalCommand.self, InspectCommand.self, BenchCommand.self, SynthCommand.self, ReportCommand.self, ExportCommand.self, VersionCommand.self])
}

/// Runs `body`; any error becomes one line on stderr and exit code 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as ExitCode {
        throw e
    } catch {
        FileHandle.standardError.write(Data("vitq: error: \(error)\n".utf8))
        throw ExitCode(1)
    }
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
