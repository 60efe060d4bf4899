import Foundation
import VitqFormats
import VitqModels
import VitqQuant
import VitqTensor
import VitqTestSupport
import XCTest

/// Seeded fuzzing of the model loaders and the recipe parser. Seeds are made at test time: tiny
/// quantized ViTs (uniform and per-token inputs) and a tiny quantized Swin, their float models,
/// and the shipped recipes. Mutations are those of ``FuzzMutator`` (bit flips, insertions,
/// deletions, truncations, hostile 64-bit fields and header numbers, repeated slices) plus
/// YAML-specific ones for recipes. Every model input loads (and then runs one image) or throws
/// a project error (FormatError, ModelError, QModelError); every recipe parses or throws a
/// RecipeError. `VITQ_FUZZ_COUNT` sets the inputs per fuzzer.
final class QModelFuzzTests: XCTestCase {
    static let ciDefault = 100_000
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func isProjectError(_ e: Error) -> Bool { e is FormatError || e is ModelError || e is QModelError }

    func modelSeeds() throws -> [[UInt8]] {
        let perToken = try Recipe.parse("activation_granularity: per_token\nmatmul_granularity: per_tensor\nweight_granularity: per_tensor\n",
                                        source: "per-token.yaml")
        let paths = [
            try TinyQModel.vit(in: dir, name: "q1"),
            try TinyQModel.vit(in: dir, name: "q2", recipe: perToken),
            try TinyQModel.swin(in: dir, name: "q3"),
            dir + "/q1-float.safetensors",
            dir + "/q3-float.safetensors",
        ]
        return try paths.map { Array(try Data(contentsOf: URL(fileURLWithPath: $0))) }
    }

    /// Loads `path` as vitq does and runs one image through a model that loads.
    func loadAndRun(_ path: String, images: [Int: Tensor]) throws -> Bool {
        let m = try ModelLoader.load(path: path)
        guard let x = images[m.imageSize] else { return false }
        _ = m.forward(x, observer: nil)
        return true
    }

    func testQuantizedFileFuzz() throws {
        let seeds = try modelSeeds()
        let images = [TinyViTFile.img: TinyQModel.images(1, size: TinyViTFile.img, seed: 9)]
        for (i, s) in seeds.enumerated() { XCTAssertTrue(try loadAndRun(write(s, "seed\(i).safetensors"), images: images), "seed \(i)") }
        let total = FuzzMutator.count(ciDefault: Self.ciDefault)
        var m = FuzzMutator(seed: 0x9E0D)
        var loaded = 0, ran = 0, rejected = 0, foreign: [String] = []
        let path = dir + "/f.safetensors"
        let start = Date()
        for i in 0..<total {
            var bytes = m.pick(seeds)
            let header = 8..<max(8, min(bytes.count, 8 + (Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16)))
            for _ in 0..<m.rounds() { m.mutate(&bytes, text: header) }
            FuzzMutator.writeFile(bytes, to: path)
            do {
                if try loadAndRun(path, images: images) { ran += 1 }
                loaded += 1
            } catch where isProjectError(error) { rejected += 1 } catch {
                if foreign.count < 5 { foreign.append("input \(i): \(type(of: error)): \(error)") }
            }
        }
        print("quantized-file fuzz: \(total) inputs, \(loaded) loaded (\(ran) ran an image), \(rejected) rejected, \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        XCTAssertEqual(foreign, [], "every rejection is a FormatError, ModelError or QModelError")
        XCTAssertEqual(loaded + rejected, total)
        XCTAssertGreaterThan(loaded, total / 100, "mutations that keep a file valid still load")
        XCTAssertGreaterThan(rejected, total / 4)
    }

    /// The shipped recipes (Config/recipes and its ablation folder).
    func recipeSeeds() throws -> [[UInt8]] {
        let root = Fixtures.packageRoot + "/Config/recipes"
        var files: [String] = []
        for sub in ["", "/ablation"] {
            files += try FileManager.default.contentsOfDirectory(atPath: root + sub).filter { $0.hasSuffix(".yaml") }.map { root + sub + "/" + $0 }
        }
        XCTAssertGreaterThan(files.count, 8)
        return try files.sorted().map { Array(try Data(contentsOf: URL(fileURLWithPath: $0))) }
    }

    /// YAML fragments a mutation inserts: anchors, aliases, nesting, tags, keys, odd scalars.
    static let yamlFragments = ["&a ", "*a", "*b", "[", "]", "{", "}", "- ", "? ", ": ", "\n", "\n  ", "\n- ", "#", "'", "\"", "|\n  ",
                                ">-\n", "!!str ", "!!int ", "!!binary ", "!!python/object ", "%YAML 1.1\n---\n", "---\n", "...\n",
                                "base: ", "base: nope.yaml\n", "base: minmax-w8a8\n", "name: ", "weight_bits: ", "keep_float: ",
                                "9223372036854775808", "-1", ".inf", ".nan", "~", "null", "yes", "0x7f", "1e400", "<<: *a\n",
                                String(repeating: "[", count: 40), String(repeating: "- ", count: 40)]

    func testRecipeYAMLFuzz() throws {
        setenv("VITQ_RECIPES", Fixtures.packageRoot + "/Config/recipes", 1)
        let seeds = try recipeSeeds()
        for s in seeds { XCTAssertNoThrow(try Recipe.parse(String(decoding: s, as: UTF8.self), source: dir + "/seed.yaml")) }
        let total = FuzzMutator.count(ciDefault: Self.ciDefault)
        var m = FuzzMutator(seed: 0x7A31)
        var parsed = 0, rejected = 0, foreign: [String] = []
        let start = Date()
        for i in 0..<total {
            var bytes = m.pick(seeds)
            for _ in 0..<m.rounds() {
                if Bool.random(using: &m.rng) {
                    m.mutate(&bytes)
                } else {
                    bytes.insert(contentsOf: Array(m.pick(Self.yamlFragments).utf8), at: Int.random(in: 0...bytes.count, using: &m.rng))
                }
            }
            do { _ = try Recipe.parse(String(decoding: bytes, as: UTF8.self), source: dir + "/fuzz.yaml"); parsed += 1 }
            catch is RecipeError { rejected += 1 } catch {
                if foreign.count < 5 { foreign.append("input \(i): \(type(of: error)): \(error)") }
            }
        }
        print("recipe fuzz: \(total) inputs, \(parsed) parsed, \(rejected) rejected, \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
        XCTAssertEqual(foreign, [], "every rejection is a RecipeError")
        XCTAssertEqual(parsed + rejected, total)
        XCTAssertGreaterThan(parsed, total / 50)
        XCTAssertGreaterThan(rejected, total / 4)
    }

    func write(_ bytes: [UInt8], _ name: String) -> String {
        let p = dir + "/" + name
        FuzzMutator.writeFile(bytes, to: p)
        return p
    }
}
