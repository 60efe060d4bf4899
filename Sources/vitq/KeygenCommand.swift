import ArgumentParser
import Foundation
import VitqFormats
import VitqZmq

/// `vitq keygen`: a CURVE key pair for a coordinator or a worker.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make a CURVE key pair: PREFIX.key (secret, mode 0600) and PREFIX.pub (public, one line).")

    @Option(help: "Path prefix of the two files.")
    var out: String
    @Flag(help: "Print one JSON object.")
    var json = false

    /// What `--json` prints: the two files and the public key.
    struct Report: Encodable { var secret_key_file: String, public_key_file: String, public_key: String }

    func run() throws {
        try reportingErrors {
            let secret = out + ".key", pub = out + ".pub"
            for path in [secret, pub] where FileManager.default.fileExists(atPath: path) || isSymlink(path) {
                throw CurveKeyError.unreadable(path: path, detail: "exists; refusing to overwrite a key")
            }
            try OutputChecks.writableFolder(of: secret, flag: "--out")
            let pair = try CurveKeyPair.generate()
            // Created 0600 from the first byte (never 0644 then chmod), and never over an existing file.
            try AtomicFile.write(Data(CurveKeys.secretFileText(pair).utf8), to: secret, mode: AtomicFile.secretMode, replacing: false)
            do {
                try AtomicFile.write(Data(CurveKeys.publicFileText(pair).utf8), to: pub, replacing: false)
            } catch {
                unlink(secret)   // no half pair
                throw error
            }
            if json {
                try printJSON(Report(secret_key_file: secret, public_key_file: pub, public_key: pair.publicKey))
            } else {
                print("\(pub)  \(pair.publicKey)")
            }
        }
    }
}
