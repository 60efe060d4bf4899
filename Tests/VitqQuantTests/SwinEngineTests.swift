import VitqFormats
import VitqModels
import VitqQuant
import VitqTensor
import VitqTestSupport
import XCTest

/// The int8 Swin engine (max calibration: every linear op, the patch merging and the head as
/// integer GEMMs; Q·Kᵀ with the bias and mask added after it, and P·V, per window and head)
/// against its fake-quant reference, bit for bit, and against the float model.
final class SwinEngineTests: XCTestCase {
    func testInt8SwinEqualsFakeQuantAndTracksFloat() throws {
        try Fixtures.require()
        let fp = try SwinTransformer(path: Fixtures.path("arch/swin_micro_patch4_window7_224_random.safetensors"))
        let golden = try TensorFile(path: Fixtures.path("arch/swin_micro_patch4_window7_224_random.golden.safetensors"))
        let images = try golden.floatTensor("input_nchw")
        var recipe = try Recipe.load("minmax-w8a8")
        recipe.keepFloat = 0
        let cal = MinMaxCalibrator(model: fp, recipe: recipe)
        cal.observe(images)
        let net = try cal.finish()
        let int8 = net.makeModel(.integer), fake = net.makeModel(.fakeQuant)
        XCTAssertTrue(int8.linearOps.allSatisfy { $0.op is Int8Linear }, "every linear op runs in integers")
        let a = int8.forward(images, observer: nil).array, b = fake.forward(images, observer: nil).array, f = fp.forward(images).array
        XCTAssertEqual(a, b, "the engine equals its fake-quant reference bit for bit")
        let classes = 1000
        for i in 0..<4 {
            let x = Array(a[(i * classes)..<((i + 1) * classes)]), y = Array(f[(i * classes)..<((i + 1) * classes)])
            let dot = zip(x, y).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let cos = dot / (x.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot() * y.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot())
            XCTAssertGreaterThan(cos, 0.99, "image \(i): cosine of int8 and float logits")
        }
    }
}
