import ArgumentParser
import Foundation
import VitqFormats
import VitqQuant
import VitqRuntime

/// `vitq report`: one self-contained HTML page (inline SVG, no script, no network) of a quantized
/// file and its calibration log: per op the bit widths, the relative output error, the clipping
/// against the input's range; for a mixed-precision file the allocation and its Pareto frontier.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write an HTML report (inline SVG, no script) of a quantized file and its calibration log.")

    @Argument(help: "A vitq quantized file.")
    var model: String
    @Option(help: "The file's calibration log: the output of `vitq quantize --json` (its sha256 must be the file's).")
    var log: String?
    @Option(parsing: .singleValue, help: "Another mixed-precision run's --json log, drawn as a measured accuracy point (repeatable).")
    var measured: [String] = []
    @Option(help: "The calibration images (as given to quantize): draw each input's range and histogram beside its clipping (needs --log for the rows).")
    var data: String?
    @Option(help: "Output HTML file.")
    var out: String
    @Flag(help: "Print one JSON object (out, bytes, ops, mixed_precision).")
    var json = false

    /// What `--json` prints.
    struct Written: Encodable {
        var out: String, bytes: Int, ops: Int
        var mixedPrecision: Bool
        enum CodingKeys: String, CodingKey { case out, bytes, ops, mixedPrecision = "mixed_precision" }
    }

    /// Largest log read (a `--json` line is a few hundred KiB).
    static let maxLogBytes = 64 << 20

    func validate() throws {
        if data != nil && log == nil { throw ValidationError("--data needs --log (the calibration rows come from it)") }
    }

    func run() throws {
        try reportingErrors {
            try OutputChecks.writableFolder(of: out, flag: "--out")
            try OutputChecks.notAnInput(out, flag: "--out", inputs: [("model", model), ("--log", log), ("--data", data)] + measured.map { ("--measured", $0) })
            let file = try TensorFile.open(path: model)
            guard QModelFile.isQuantized(file) else { throw FlagError("\(model): not a vitq quantized file (vitq report reads the output of quantize)") }
            let (net, provenance) = try QModelFile.read(file)
            let bytes = try FileManager.default.attributesOfItem(atPath: model)[.size] as? Int ?? 0
            let logObject = try log.map { (path: $0, object: try Self.readLog($0)) }
            var profile: ActivationProfile?
            if let data, let (path, o) = logObject {
                guard let offset = o["calibration_offset"] as? Int, let count = o["calibration_images"] as? Int, offset >= 0, count > 0 else {
                    throw FlagError("\(path): keys 'calibration_offset' and 'calibration_images' must be a non-negative and a positive integer")
                }
                let ds = try Inputs.dataset(path: data, labels: nil, classIndex: nil, preprocess: net.base.preprocess)
                guard offset + count <= ds.count else {
                    throw FlagError("--data \(data) has \(ds.count) images; the log calibrated on \(offset)..<\(offset + count)")
                }
                let size = net.base.preprocess.inputSize
                profile = try ActivationProfile.measure(net.base, ops: net.base.linearOps.map(\.name), images: offset..<(offset + count), batch: 8) {
                    try ds.batch(Array($0), size: size)
                }
            }
            let report = try QuantizationReport(file: model, fileBytes: bytes, sha256: try SHA256.hex(ofFile: model), network: net,
                                                provenance: provenance, log: logObject,
                                                measured: try measured.map { (path: $0, object: try Self.readLog($0)) }, profile: profile)
            let page = Data(ReportHTML.render(report).utf8)
            try AtomicFile.write(page, to: out)
            if json { try printJSON(Written(out: out, bytes: page.count, ops: report.ops.count, mixedPrecision: report.allocation != nil)) }
            else { print("wrote \(out)") }
        }
    }

    /// A `--json` log: one JSON object, at most ``maxLogBytes``.
    static func readLog(_ path: String) throws -> [String: Any] {
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
        guard let size else { throw FlagError("\(path): cannot be read") }
        guard size <= maxLogBytes else { throw FlagError("\(path): \(size) bytes is more than a log's \(maxLogBytes)") }
        guard let data = FileManager.default.contents(atPath: path) else { throw FlagError("\(path): cannot be read") }
        guard let o = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw FlagError("\(path): not a JSON object (the output of `vitq quantize --json`)")
        }
        return o
    }
}
