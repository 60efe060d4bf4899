import ArgumentParser
import VitqRuntime

/// `vitq version`: versions of vitq and the libraries it links, and the kernels in use.
struct VersionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "version", abstract: "Print versions and the kernel variant in use.")

    func run() { BuildInfo.lines.forEach { print($0) } }
}
