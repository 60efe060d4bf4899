import ArgumentParser
import VitqZmq

/// `vitq keygen`: a CURVE key pair for a coordinator or a worker.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make a CURVE key pair: PREFIX.key (secret, mode 0600) and PREFIX.pub (public, one line).")

    @Option(help: "Path prefix of the two files.")
    var out: String

    func run() throws {
        try reportingErrors {
            let pair = try CurveKeyPair.generate()
            try CurveKeys.write(pair, prefix: out)
            print("\(out).pub  \(pair.publicKey)")
        }
    }
}
