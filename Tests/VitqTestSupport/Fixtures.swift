import Foundation
import VitqFormats
import VitqTensor
import XCTest

/// Paths of the shared fixtures: `$VITQ_FIXTURES`, else `../shared/fixtures` beside the checkout.
public enum Fixtures {
    public static let root: String = {
        if let env = ProcessInfo.processInfo.environment["VITQ_FIXTURES"] { return env }
        let pkg = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return pkg.deletingLastPathComponent().appendingPathComponent("shared/fixtures").path
    }()

    /// The package root (the shipped recipes, the kernel header).
    public static let packageRoot: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    public static func path(_ rel: String) -> String { root + "/" + rel }

    public static var vitTiny: String { path("vit_tiny_patch16_224.augreg_in21k_ft_in1k.safetensors") }
    public static var even500Images: String { path("imagenet_sample/even500_images_u8_nhwc.npy") }
    public static var even500Labels: String { path("imagenet_sample/even500_labels.npy") }
    public static var even500RefLogits: String { path("imagenet_sample/vit_tiny_ref_logits_even500_f32.npy") }
    public static var deitMicro: String { path("arch/deit_distilled_micro_patch16_224_random.safetensors") }
    public static var deitMicroGolden: String { path("arch/deit_distilled_micro_patch16_224_random.golden.safetensors") }
    /// The real CIFAR-10 ViT (SOURCES.md §3), its first 932 test images and their reference logits.
    public static var cifarViT: String { path("cifar10/vit_cifar10_smmk47.pth") }
    public static var cifarImages: String { path("cifar10/cifar10_test_first932.bin") }
    public static var cifarRefLogits: String { path("cifar10/vit_cifar10_ref_logits_first932_f32.bin") }
    public static var swinMicro: String { path("arch/swin_micro_patch4_window7_224_random.safetensors") }

    /// Fails the test (never skips) when the fixtures are absent.
    public static func require(file: StaticString = #filePath, line: UInt = #line) throws {
        guard FileManager.default.fileExists(atPath: vitTiny) else {
            XCTFail("fixtures not found at \(root); set VITQ_FIXTURES or put shared/ beside the checkout", file: file, line: line)
            throw MissingFixtures(root: root)
        }
    }
}

/// Thrown (after a test failure is recorded) when the fixtures are absent.
public struct MissingFixtures: Error { public let root: String }

/// A fresh temporary directory, removed by the caller's `defer`.
public func makeTempDir() -> String {
    let p = NSTemporaryDirectory() + "vitq-test-" + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
    return p
}

/// max|a−b| / max|ref| over two float sequences.
public func relativeError(_ a: [Float], _ ref: [Float]) -> Double {
    a.withUnsafeBufferPointer { pa in ref.withUnsafeBufferPointer { pr in TensorCompare.maxRelativeError(pa, reference: pr) } }
}
