import Foundation
import VitqFormats
import VitqTestSupport
import XCTest

/// `vitq eval --dump-logits` of a quantized file on the accuracy protocol's 468 evaluation
/// images (rows 32..499 of even500), with the integer engine and with the fake-quant reference.
func integerAndFakeQuantLogits(_ file: String, in dir: String) throws -> (integer: [Float], fakeQuant: [Float]) {
    var logits: [[Float]] = []
    for engine in ["integer", "fake-quant"] {
        let out = dir + "/\(engine).npy"
        let r = try CLIRunner.run(["eval", file, "--data", Fixtures.even500Images, "--labels", Fixtures.even500Labels,
                                   "--offset", "32", "--engine", engine, "--dump-logits", out])
        XCTAssertEqual(r.status, 0, r.stderr)
        logits.append(try NpyArray(path: out).floats())
    }
    XCTAssertEqual(logits[0].count, 468 * 1000)
    return (logits[0], logits[1])
}
