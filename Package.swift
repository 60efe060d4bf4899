// swift-tools-version:6.0
import PackageDescription

/// vitq: post-training quantization of Vision Transformers, with exact int8 kernels
/// and distributed calibration. See Docs/ARCHITECTURE.md for the map of the code.
let package = Package(
    name: "vitq",
    products: [
        .executable(name: "vitq", targets: ["vitq"]),
        .library(name: "VitqRuntime", targets: ["VitqRuntime"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // MARK: Debian C libraries
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZmq", pkgConfig: "libzmq",
                       providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg",
                       providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),

        // MARK: Our C kernels (scalar _ref + AVX2 variants, run-time dispatch)
        .target(name: "CVitqKernels"),

        // MARK: Swift library
        .target(name: "VitqTensor", dependencies: ["CVitqKernels", "COpenBLAS"]),
        .target(name: "VitqFormats", dependencies: ["VitqTensor", "CVitqKernels"]),
        .target(name: "VitqModels", dependencies: ["VitqTensor", "VitqFormats", "VitqData"]),
        .target(name: "VitqData", dependencies: ["VitqTensor", "VitqFormats", "CTurboJPEG", "CPNG"]),
        .target(name: "VitqQuant", dependencies: ["VitqTensor", "VitqFormats", "VitqModels", "CVitqKernels",
                                                  .product(name: "Yams", package: "Yams")]),
        .target(name: "VitqZmq", dependencies: ["CZmq"]),
        // ONNX export: the graph builders over onnx.proto's messages (Generated/, from Deploy/generate-onnx-proto.sh).
        .target(name: "VitqONNX", dependencies: ["VitqTensor", "VitqModels", "VitqQuant",
                                                 .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .target(name: "VitqDistributed", dependencies: ["VitqQuant"]),
        .target(name: "VitqRuntime", dependencies: ["VitqTensor", "VitqFormats", "VitqModels", "VitqData", "VitqQuant",
                                                    "VitqDistributed", "VitqZmq",
                                                    // BuildInfo (`vitq version`) reports the C libraries' versions and the kernels in use.
                                                    "CVitqKernels", "COpenBLAS", "CZmq", "CPNG"]),
        .executableTarget(name: "vitq", dependencies: [
            "VitqRuntime", "VitqQuant", "VitqZmq", "VitqTensor", "VitqFormats", "VitqModels", "VitqData", "VitqONNX",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // MARK: Tests (fixtures are read from ../shared/fixtures, or $VITQ_FIXTURES)
        .target(name: "VitqTestSupport", dependencies: ["VitqTensor", "VitqFormats"], path: "Tests/VitqTestSupport"),
        .testTarget(name: "VitqKernelsTests", dependencies: ["VitqTensor", "CVitqKernels", "VitqTestSupport"]),
        .testTarget(name: "VitqFormatsTests", dependencies: ["VitqFormats", "VitqTensor", "VitqTestSupport"]),
        .testTarget(name: "VitqModelsTests", dependencies: ["VitqModels", "VitqFormats", "VitqData", "VitqTensor", "VitqTestSupport"]),
        .testTarget(name: "VitqDataTests", dependencies: ["VitqData", "VitqModels", "VitqFormats", "VitqTensor", "VitqTestSupport"]),
        .testTarget(name: "VitqQuantTests", dependencies: ["VitqQuant", "VitqModels", "VitqFormats", "VitqTensor", "CVitqKernels", "VitqTestSupport"]),
        .testTarget(name: "VitqDistributedTests", dependencies: ["VitqDistributed", "VitqQuant"]),
        // VitqCLITests runs the `vitq` built with it (CLIRunner), never a stale binary.
        .testTarget(name: "VitqCLITests", dependencies: ["vitq", "VitqRuntime", "VitqTestSupport", "VitqZmq", "VitqDistributed", "VitqQuant",
                                                        "VitqModels", "VitqData", "VitqFormats", "VitqTensor"]),
    ],
    swiftLanguageModes: [.v5]
)
