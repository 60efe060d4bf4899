import ArgumentParser
import VitqRuntime

/// `vitq version`: versions of vitq and the libraries it links, and the kernels in use.
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print versions and the kernel variant in use.")

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        try reportingErrors {
            if json { try printJSON(BuildInfo.report) } else { BuildInfo.lines.forEach { print($0) } }
        }
    }
}
