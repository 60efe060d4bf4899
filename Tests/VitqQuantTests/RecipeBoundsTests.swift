import Foundation
import VitqQuant
import VitqTestSupport
import XCTest

/// Recipe text is bounded before Yams parses it (size, nesting depth, aliases), recipe files
/// are read only when regular, and `base: x.yaml` is relative to the recipe's own folder.
final class RecipeBoundsTests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    func assertRefused(_ text: String, _ needles: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try Recipe.parse(text, source: "r.yaml"), file: file, line: line) { e in
            let t = "\(e)"
            XCTAssertTrue(e is RecipeError, t, file: file, line: line)
            XCTAssertFalse(t.contains("\n"), "one line: \(t)", file: file, line: line)
            for n in ["r.yaml"] + needles { XCTAssertTrue(t.contains(n), "'\(t)' should mention '\(n)'", file: file, line: line) }
        }
    }

    /// Nine levels of ten aliases each: 10^9 nodes once expanded (over 3 GB before).
    func testBillionLaughsIsRefused() {
        var text = "a0: &a0 [lol]\n"
        for i in 1...9 { text += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n" }
        assertRefused(text, ["aliases"])
    }

    /// 100k-deep nesting overflowed the stack (SIGSEGV); it is over the size bound, and 30k-deep
    /// nesting within the size bound is over the depth bound, in flow and in block style.
    func testDeepNestingIsRefused() {
        assertRefused("name: " + String(repeating: "[", count: 100_000), ["bytes"])
        assertRefused("name: " + String(repeating: "[", count: 30_000) + String(repeating: "]", count: 30_000), ["nesting"])
        assertRefused("name: " + String(repeating: "{a: ", count: 10_000), ["nesting"])
        assertRefused(String(repeating: "- ", count: 30_000) + "x\n", ["nesting"])
        assertRefused((0..<300).map { String(repeating: " ", count: $0) + "k\($0):\n" }.joined(), ["nesting"])
        // CR line ends count as line ends.
        assertRefused((0..<100).map { String(repeating: " ", count: $0) + "k\($0):\r" }.joined(), ["nesting"])
        // Blank and comment lines between the levels do not hide them.
        assertRefused((0..<100).map { String(repeating: " ", count: $0) + "k\($0):\n\n# c\n" }.joined(), ["nesting"])
    }

    /// Found by the recipe fuzzer: Yams' constructor force-unwraps a mapping key as a string, so
    /// `[a]: b` trapped (SIGILL); its base-60 integers can overflow.
    func testNonScalarKeysValuesAndOddNumbersAreErrors() throws {
        assertRefused("[a]: b\n", ["keys must be plain strings"])
        assertRefused("{x: 1}: 2\n", ["keys must be plain strings"])
        assertRefused("? [a, b]\n: c\n", ["keys must be plain strings"])
        assertRefused("name: [a, b]\n", ["'name'", "non-empty string"])
        assertRefused("name: {a: b}\n", ["'name'", "non-empty string"])
        assertRefused("module_bits: {a: {b: 4}}\n", ["'module_bits'", "not to lists or mappings"])
        assertRefused("keep_float_ops: [[a], b]\n", ["'keep_float_ops'", "not of lists or mappings"])
        assertRefused("keep_float: 99999999999999999999:00:00\n", ["keep_float"])
        assertRefused("keep_float: 99999999999999999999999\n", ["keep_float"])
        assertRefused("keep_float: 1\nkeep_float: 2\n", ["keep_float", "twice"])
        assertRefused("search_alpha: .nan\n", ["search_alpha"])
        assertRefused("name: x\n  bad: [\n", ["not valid YAML"])
        let r = try Recipe.parse("keep_float: 0x10\nweight_bits: 0o6\ntwin: yes\nsearch_beta: 1_0\n", source: "r.yaml")
        XCTAssertEqual([r.keepFloat, r.weightBits], [16, 6])
        XCTAssertTrue(r.search.twin)
        XCTAssertEqual(r.search.beta, 10)
    }

    /// Reconstruction's keys need `reconstruction`, which needs the search; values are bounded;
    /// the settings reach the canonical JSON only when on (earlier files keep their bytes).
    func testReconstructionKeysAreCheckedAndRecorded() throws {
        assertRefused("method: search\nrounding_weight: 0.1\n", ["rounding_weight", "reconstruction: parallel"])
        assertRefused("method: minmax\nreconstruction: parallel\n", ["reconstruction", "method 'search'"])
        assertRefused("method: search\nreconstruction: backwards\n", ["reconstruction", "parallel, sequential"])
        assertRefused("method: search\nreconstruction: parallel\nreconstruction_iterations: 0\n", ["reconstruction_iterations"])
        assertRefused("method: search\nreconstruction: parallel\nqdrop: 1.5\n", ["qdrop"])
        assertRefused("method: search\nreconstruction: parallel\nrounding_warmup: 1\n", ["rounding_warmup"])
        let r = try Recipe.parse("method: search\nreconstruction: sequential\nreconstruction_iterations: 50\nqdrop: 0.5\n", source: "r.yaml")
        XCTAssertEqual(r.reconstruction?.mode, .sequential)
        XCTAssertEqual(r.reconstruction?.iterations, 50)
        XCTAssertEqual(r.reconstruction?.dropProbability, 0.5)
        XCTAssertTrue(r.canonicalJSON.contains("\"reconstruction\":\"sequential\""), r.canonicalJSON)
        XCTAssertTrue(r.canonicalJSON.contains("\"reconstruction_iterations\":50"), r.canonicalJSON)
        let off = try Recipe.parse("method: search\n", source: "r.yaml")
        XCTAssertFalse(off.canonicalJSON.contains("reconstruction"))
        // `reconstruction: none` in a derived recipe turns a base's reconstruction off.
        XCTAssertNil(try Recipe.parse("method: search\nreconstruction: none\n", source: "r.yaml").reconstruction)
        // β: none during the warmup, 20 at its end, 2 at the last iteration.
        var s = ReconstructionSettings()
        s.iterations = 100; s.warmup = 0.2
        XCTAssertNil(s.beta(at: 19))
        XCTAssertEqual(s.beta(at: 20), 20)
        XCTAssertEqual(try XCTUnwrap(s.beta(at: 100)), 2, accuracy: 1e-6)
    }

    /// `per_tensor_input_ops` needs per-token inputs; it gives the ops it names (by name or by the
    /// end of the name after a dot) a calibrated input in ``Recipe/forOp(_:)``, and no other op.
    func testPerTensorInputOpsAreCheckedAndApplyToTheOpsTheyName() throws {
        assertRefused("method: search\nper_tensor_input_ops: [mlp.fc2]\n", ["per_tensor_input_ops", "per_token"])
        assertRefused("method: search\nactivation_granularity: per_token\nper_tensor_input_ops: mlp.fc2\n", ["per_tensor_input_ops", "list"])
        let r = try Recipe.parse("method: search\nactivation_granularity: per_token\nper_tensor_input_ops: [mlp.fc2]\n", source: "r.yaml")
        XCTAssertEqual(r.forOp("blocks.3.mlp.fc2").search.activationGranularity, .perTensor)
        XCTAssertEqual(r.forOp("blocks.3.mlp.fc1").search.activationGranularity, .perToken)
        XCTAssertEqual(r.forOp("head").search.activationGranularity, .perToken)
        XCTAssertFalse(r.keepsCalibratedInput("blocks.3.mlp.fc2x"))
        XCTAssertTrue(r.canonicalJSON.contains("\"per_tensor_input_ops\":[\"mlp.fc2\"]"), r.canonicalJSON)
        XCTAssertFalse(try Recipe.parse("method: search\n", source: "r.yaml").canonicalJSON.contains("per_tensor_input_ops"))
    }

    func testOrdinaryRecipesStillParse() throws {
        let r = try Recipe.parse("# a comment\nname: x   # trailing *comment [\nweight_bits: 6\n\nkeep_float: 2\n", source: "r.yaml")
        XCTAssertEqual([r.weightBits, r.keepFloat], [6, 2])
        // Brackets in comments: 40 lines like "# multipliers [0.8, 1.2] {see BENCHMARKS}" once
        // counted as 80 nesting levels.
        let commented = (0..<40).map { "# variant \($0): multipliers [0.8, 1.2] {see BENCHMARKS}\n" }.joined() + "weight_bits: 6\n"
        XCTAssertEqual(try Recipe.parse(commented, source: "r.yaml").weightBits, 6)
        // A few aliases of scalars are fine.
        let s = try Recipe.parse("weight_bits: &b 6\nactivation_bits: *b\n", source: "r.yaml")
        XCTAssertEqual(s.activationBits, 6)
        for f in try FileManager.default.contentsOfDirectory(atPath: Fixtures.packageRoot + "/Config/recipes") where f.hasSuffix(".yaml") {
            XCTAssertNoThrow(try Recipe.load(Fixtures.packageRoot + "/Config/recipes/" + f), f)
        }
    }

    func testOversizedNonRegularAndMissingFilesAreRefused() throws {
        let big = dir + "/big.yaml"
        FileManager.default.createFile(atPath: big, contents: Data(("name: x\n" + String(repeating: "# pad\n", count: 20_000)).utf8))
        XCTAssertThrowsError(try Recipe.load(big)) { XCTAssertTrue("\($0)".contains(big) && "\($0)".contains("bytes"), "\($0)") }
        XCTAssertThrowsError(try Recipe.load("/dev/zero")) { XCTAssertTrue("\($0)".contains("regular file"), "\($0)") }
        XCTAssertThrowsError(try Recipe.load(dir)) { XCTAssertTrue("\($0)".contains("regular file"), "\($0)") }
        let fifo = dir + "/fifo.yaml"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        XCTAssertThrowsError(try Recipe.load(fifo)) { XCTAssertTrue("\($0)".contains("regular file"), "\($0)") }
        XCTAssertThrowsError(try Recipe.load(dir + "/none.yaml")) { XCTAssertTrue("\($0)".contains("none.yaml"), "\($0)") }
    }

    /// `base: parent.yaml` was opened relative to the working directory, not the recipe's folder.
    func testBareBaseFileResolvesAgainstTheRecipesFolder() throws {
        let sub = dir + "/recipes"
        try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
        try "name: parent\nweight_bits: 5\nkeep_float: 3\n".write(toFile: sub + "/parent.yaml", atomically: true, encoding: .utf8)
        try "base: parent.yaml\nname: child\nkeep_float: 1\n".write(toFile: sub + "/child.yaml", atomically: true, encoding: .utf8)
        let cwd = FileManager.default.currentDirectoryPath
        XCTAssertFalse(FileManager.default.fileExists(atPath: cwd + "/parent.yaml"), "the working directory has no parent.yaml")
        let r = try Recipe.load(sub + "/child.yaml")
        XCTAssertEqual(r.name, "child")
        XCTAssertEqual([r.weightBits, r.keepFloat], [5, 1])
    }
}
