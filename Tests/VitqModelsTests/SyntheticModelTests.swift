import XCTest
import VitqModels

/// `vitq synth`'s models against timm: the parameter counts timm (and torchvision, for the
/// sizes it has) reports for each architecture with 1000 classes.
final class SyntheticModelTests: XCTestCase {
    func testEveryAliasHasTimmsParameterCount() throws {
        let timm: [String: Int] = [
            "vit-tiny": 5_717_416, "vit-small": 22_050_664, "vit-base": 86_567_656,
            "vit-large": 304_326_632, "vit-huge": 632_045_800,
            "deit-tiny": 5_717_416, "deit-small": 22_050_664, "deit-base": 86_567_656,
            "deit-base-distilled": 87_338_192,
            "swin-tiny": 28_288_354, "swin-small": 49_606_258, "swin-base": 87_768_224, "swin-large": 196_532_476,
        ]
        let aliases = Set(KnownModels.synthAliases.keys).union(SyntheticModel.swinAliases.keys)
        XCTAssertTrue(Set(timm.keys).isSubset(of: aliases), "missing: \(Set(timm.keys).subtracting(aliases).sorted())")
        for (arch, expected) in timm {
            let specs = try SyntheticModel.swinAliases[arch].map { SyntheticModel.swinTensors($0) } ?? SyntheticModel.vitTensors(arch: arch)
            XCTAssertEqual(specs.reduce(0) { $0 + $1.count }, expected, arch)
            XCTAssertEqual(Set(specs.map(\.name)).count, specs.count, "\(arch): a key twice")
        }
    }

    func testTheWriterDrawsExactlyTheListedTensors() throws {
        let specs = try SyntheticModel.vitTensors(arch: "deit-tiny-distilled")
        let bytes = try SyntheticModel.vit(arch: "deit-tiny-distilled", seed: 4).serialized()
        let headerLength = bytes.prefix(8).withUnsafeBytes { Int($0.loadUnaligned(as: UInt64.self).littleEndian) }
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<(8 + headerLength))) as? [String: Any])
        for s in specs {
            let entry = try XCTUnwrap(header[s.name] as? [String: Any], s.name)
            XCTAssertEqual(entry["shape"] as? [Int], s.shape, s.name)
        }
        XCTAssertEqual(header.keys.filter { $0 != "__metadata__" }.count, specs.count)
        XCTAssertEqual(bytes.count - 8 - headerLength, specs.reduce(0) { $0 + 4 * $1.count })
    }

    func testAnUnknownArchitectureNamesTheChoices() {
        XCTAssertThrowsError(try SyntheticModel.named("vit-gigantic")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("vit-gigantic") && text.contains("swin-base") && text.contains("vit-huge"), text)
        }
    }
}
