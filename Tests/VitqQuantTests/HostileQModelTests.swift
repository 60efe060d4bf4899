import Foundation
import VitqFormats
import VitqModels
import VitqQuant
import VitqTensor
import VitqTestSupport
import XCTest

/// Crafted quantized files (from ``TinyQModel``): sizes in the `model` metadata that trapped or
/// allocated without bound, and non-finite float tensors, are one-line errors.
extension QModelFileTests {
    /// The `model` metadata of `path` with `old` replaced by `new` (which must occur).
    func editModel(_ path: String, _ old: String, _ new: String, file: StaticString = #filePath, line: UInt = #line) throws -> String {
        try rewrite(path, metadata: { m in
            XCTAssertTrue(m["model"]!.contains(old), "the model metadata has \(old)", file: file, line: line)
            m["model"] = m["model"]!.replacingOccurrences(of: old, with: new)
        })
    }

    func testTinyQuantizedFilesReadBack() throws {
        let v = try QModelFile.read(try TensorFile(path: try TinyQModel.vit(in: dir))).model
        XCTAssertEqual(v.family.name, "vit")
        let s = try QModelFile.read(try TensorFile(path: try TinyQModel.swin(in: dir))).model
        XCTAssertEqual(s.family.name, "swin")
    }

    /// Image size 2^62 overflowed the patch count; input channels 2^62 the patch-embedding width.
    func testHugeImageSizeOrChannelsIsAnError() throws {
        let q = try TinyQModel.vit(in: dir)
        assertReadFails(try editModel(q, "\"imgSize\":16", "\"imgSize\":4611686018427387904"), mentions: ["metadata 'model'", "imgSize"])
        assertReadFails(try editModel(q, "\"inChans\":3", "\"inChans\":4611686018427387904"), mentions: ["metadata 'model'", "inChans"])
        assertReadFails(try editModel(q, "\"mlpHidden\":16", "\"mlpHidden\":4611686018427387904"), mentions: ["metadata 'model'", "mlpHidden"])
        assertReadFails(try editModel(q, "\"inChans\":3", "\"inChans\":1"), mentions: ["metadata 'model'", "in_chans", "RGB"])
        assertReadFails(try editModel(q, "\"cropPct\":0.9", "\"cropPct\":0"), mentions: ["metadata 'model'", "crop_pct"])
    }

    /// Depth 2^40 built 2^42 op names (and their tensors' keys) before looking at a tensor.
    func testHugeDepthIsRefusedBeforeAllocating() throws {
        let q = try TinyQModel.vit(in: dir)
        let start = Date()
        assertReadFails(try editModel(q, "\"depth\":1", "\"depth\":1099511627776"), mentions: ["metadata 'model'", "depth", "1099511627776"])
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        let s = try TinyQModel.swin(in: dir)
        assertReadFails(try editModel(s, "\"depths\":[2]", "\"depths\":[1099511627776]"), mentions: ["metadata 'model'", "depths"])
        assertReadFails(try editModel(s, "\"embedDim\":4", "\"embedDim\":1152921504606846976"), mentions: ["metadata 'model'"])
        assertReadFails(try editModel(s, "\"imgSize\":16", "\"imgSize\":4611686018427387904"), mentions: ["metadata 'model'"])
    }

    /// NaN or Inf in a quantized file's float tensors (position embedding, norms, a float op,
    /// biases) was loaded silently.
    func testNonFiniteFloatTensorsAreRefused() throws {
        let q = try TinyQModel.vit(in: dir)
        let f = try TensorFile(path: q)
        let floatOp = try XCTUnwrap(f.names.first { $0.hasSuffix(".weight") && f.tensors[$0]?.dtype == .f32 && !$0.contains("norm") },
                                    "keep_float left one op's weight in F32")
        for name in ["pos_embed", "blocks.0.norm2.weight", "blocks.0.attn.qkv.bias", floatOp] {
            for bad in [Float.nan, Float.infinity] {
                let p = try rewrite(q, tensors: { n, shape, d in
                    guard n == name else { return (n, shape, d) }
                    var v = d.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
                    v[v.count - 1] = bad
                    return (n, shape, v.withUnsafeBufferPointer { Data(buffer: $0) })
                })
                assertReadFails(p, mentions: ["'\(name)'", "not finite"])
            }
        }
        let s = try TinyQModel.swin(in: dir)
        let p = try rewrite(s, tensors: { n, shape, d in
            guard n == "layers.0.blocks.1.attn.relative_position_bias_table" else { return (n, shape, d) }
            return (n, shape, Data(repeating: 0xFF, count: d.count))   // all NaN
        })
        assertReadFails(p, mentions: ["relative_position_bias_table", "not finite"])
    }
}
