import Foundation
import VitqDistributed
import VitqFormats
import VitqModels
import VitqQuant
import VitqTestSupport
import XCTest

/// Issue 16 against the built binary: huge flags, outputs that would overwrite an input, checks
/// made before the calibration, a full spill disk, secret-key modes, endpoints and failed binds,
/// the journal's fingerprint and replay checks, and what a SIGKILL of `quantize --workers` leaves.
/// Runs use the micro DeiT (64 wide, 2 blocks) on a few images so the suite stays fast.
final class HardeningCLITests: XCTestCase {
    var dir = ""
    override func setUp() { dir = makeTempDir() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

    var model: String { Fixtures.deitMicro }
    var data: String { Fixtures.even500Images }
    var labels: String { Fixtures.even500Labels }

    /// Runs vitq expecting a clean failure: exit 1 (no signal), one line on stderr mentioning every needle.
    @discardableResult
    func assertFails(_ args: [String], mentions needles: [String], environment: [String: String] = [:],
                     file: StaticString = #filePath, line: UInt = #line) throws -> CLIRunner.Result {
        let r = try CLIRunner.run(args, environment: environment)
        XCTAssertEqual(r.status, 1, "exit 1, not a signal: \(r.stderr)", file: file, line: line)
        let lines = r.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "one line: \(r.stderr)", file: file, line: line)
        for n in needles { XCTAssertTrue(r.stderr.contains(n), "'\(r.stderr)' should mention '\(n)'", file: file, line: line) }
        return r
    }

    func sha(_ path: String) throws -> String { try SHA256.hex(ofFile: path) }

    // MARK: item 5: huge numbers in flags

    func testHugeNumericFlagsGiveOneLineInsteadOfATrap() throws {
        try Fixtures.require()
        let huge = "\(Int.max)", out = dir + "/q.safetensors"
        let base = ["quantize", model, "--data", data, "--recipe", "minmax-w8a8", "--out", out]
        try assertFails(base + ["--calib-offset", "1", "--calib", huge], mentions: ["--calib", "500"])
        try assertFails(base + ["--calib", "2", "--calib-offset", huge], mentions: ["--calib-offset", "500"])
        try assertFails(base + ["--calib", "2", "--eval-offset", "1", "--eval-limit", huge], mentions: ["--eval-limit", "500"])
        try assertFails(base + ["--calib", "2", "--eval-offset", huge], mentions: ["--eval-offset", "500"])
        try assertFails(base + ["--calib", "2", "--batch", huge], mentions: ["--batch"])
        try assertFails(base + ["--calib", "2", "--threads", huge], mentions: ["--threads"])
        try assertFails(base + ["--calib", "2", "--memory-budget", huge], mentions: ["--memory-budget"])
        try assertFails(base + ["--calib", "2", "--workers", huge], mentions: ["--workers"])
        try assertFails(["eval", model, "--data", data, "--offset", "1", "--limit", huge, "--batch", huge], mentions: ["--batch"])
        try assertFails(["worker", "--connect", "tcp://127.0.0.1:9", "--memory-budget", huge], mentions: ["--memory-budget"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "no output")
    }

    /// `vitq eval --offset 1 --limit Int.max` overflowed `offset + limit`; it now means "to the end".
    func testEvalLimitPastTheEndIsClampedWithoutOverflow() throws {
        try Fixtures.require()
        let r = try CLIRunner.run(["eval", model, "--data", data, "--offset", "498", "--limit", "\(Int.max)", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("\"images\":2"), r.stdout)
    }

    // MARK: item 15: checks before the calibration; the flags the messages name

    func testCalibrationLargerThanTheDataIsRefusedNotClamped() throws {
        try Fixtures.require()
        let out = dir + "/q.safetensors"
        try assertFails(["quantize", model, "--data", data, "--calib-offset", "490", "--calib", "32", "--out", out],
                        mentions: ["--calib 32", "--calib-offset 490", "500", "at most 10"])
        try assertFails(["quantize", model, "--data", data, "--calib-offset", "600", "--calib", "2", "--out", out],
                        mentions: ["--calib-offset 600", "500"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    /// Before the fix the model was calibrated and written, and only then did the run exit 1,
    /// with a message about "--offset" (a flag `quantize` does not have).
    func testEvalRangeIsCheckedBeforeAnythingIsWritten() throws {
        try Fixtures.require()
        let out = dir + "/q.safetensors"
        let base = ["quantize", model, "--data", data, "--calib", "2", "--out", out]
        try assertFails(base + ["--eval-offset", "500"], mentions: ["--eval-offset 500", "500 images"])
        try assertFails(base + ["--eval-offset", "400", "--eval-limit", "101"], mentions: ["--eval-limit 101", "at most 100"])
        try assertFails(base + ["--eval-offset", "1", "--eval-limit", "0"], mentions: ["--eval-limit"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "nothing written when a flag is bad")
        let r = try CLIRunner.run(base + ["--eval-offset", "498", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("\"eval_images\":2"), r.stdout)
    }

    func testABadOutFolderIsRefusedBeforeTheCalibration() throws {
        try Fixtures.require()
        let base = ["quantize", model, "--data", data, "--calib", "2"]
        try assertFails(base + ["--out", dir + "/missing/q.safetensors"], mentions: ["--out", dir + "/missing", "does not exist"])
        try assertFails(base + ["--out", dir], mentions: ["--out", dir, "is a directory"])
        let file = dir + "/plain"
        try "x".write(toFile: file, atomically: false, encoding: .utf8)
        try assertFails(base + ["--out", file + "/q.safetensors"], mentions: ["--out", "is not a directory"])
        try assertFails(base + ["--out", dir + "/q.safetensors", "--spill-dir", dir + "/nope"], mentions: ["--spill-dir", "does not exist"])
        // Not writable, even for root: a read-only file system.
        let readOnly = try XCTUnwrap(SmallFilesystem(bytes: 1 << 16, readOnly: true), "cannot mount a read-only tmpfs")
        try assertFails(base + ["--out", readOnly.path + "/q.safetensors"], mentions: ["--out", readOnly.path, "not writable"])
        try assertFails(["synth", "--arch", "vit-tiny", "--out", dir + "/missing/m.safetensors"], mentions: ["--out", "does not exist"])
        try assertFails(["eval", model, "--data", data, "--limit", "1", "--dump-logits", dir], mentions: ["--dump-logits", "is a directory"])
    }

    // MARK: item 12: --out must not be an input

    func testOutThatIsAnInputIsRefusedAndTheInputIsUntouched() throws {
        try Fixtures.require()
        let copy = dir + "/model.safetensors"
        try FileManager.default.copyItem(atPath: model, toPath: copy)
        let labelsCopy = dir + "/labels.npy"
        try FileManager.default.copyItem(atPath: labels, toPath: labelsCopy)
        let recipe = dir + "/r.yaml"
        try "name: r\nbase: minmax-w8a8\n".write(toFile: recipe, atomically: true, encoding: .utf8)
        let link = dir + "/link.safetensors"
        XCTAssertEqual(symlink(copy, link), 0)
        let hard = dir + "/hard.safetensors"
        try FileManager.default.linkItem(atPath: copy, toPath: hard)
        let before = try sha(copy), labelsBefore = try sha(labelsCopy), recipeBefore = try sha(recipe)
        let base = ["quantize", copy, "--data", data, "--labels", labelsCopy, "--calib", "2", "--recipe", recipe]
        try assertFails(base + ["--out", copy], mentions: ["--out", copy, "input"])
        try assertFails(base + ["--out", link], mentions: ["--out", link, "input"])
        try assertFails(base + ["--out", hard], mentions: ["--out", hard, "input"])
        try assertFails(base + ["--out", dir + "/./model.safetensors"], mentions: ["--out", "input"])
        try assertFails(base + ["--out", labelsCopy], mentions: ["--labels", "input"])
        try assertFails(base + ["--out", recipe], mentions: ["--recipe", "input"])
        try assertFails(["eval", copy, "--data", data, "--limit", "1", "--dump-logits", link], mentions: ["--dump-logits", "input"])
        try assertFails(["coordinator", copy, "--data", data, "--calib", "2", "--recipe", "ptq4vit-fast", "--out", dir + "/q.safetensors",
                         "--journal", dir + "/q.safetensors"], mentions: ["--journal", "input"])
        try assertFails(["coordinator", copy, "--data", data, "--calib", "2", "--recipe", "ptq4vit-fast", "--out", dir + "/q.safetensors",
                         "--status", link], mentions: ["--status", link, "input"])
        XCTAssertEqual(try sha(copy), before, "the model is untouched")
        XCTAssertEqual(try sha(labelsCopy), labelsBefore)
        XCTAssertEqual(try sha(recipe), recipeBefore)
        var st = stat()
        XCTAssertEqual(lstat(link, &st), 0)
        XCTAssertEqual(st.st_mode & S_IFMT, S_IFLNK, "the symlink is still a symlink")
    }

    // MARK: item 10: a full spill disk

    /// Before the fix the spill files were sparse and mapped: on a full disk the first write of
    /// a page killed vitq with SIGBUS. Where nothing can be mounted, the fallback checks that a
    /// bad --spill-dir is refused up front.
    func testAFullSpillDiskIsOneLineNamingTheFolderAndTheBytes() throws {
        try Fixtures.require()
        let out = dir + "/q.safetensors"
        guard let fs = SmallFilesystem(bytes: 1 << 20) else {
            try assertFails(["quantize", model, "--data", data, "--calib", "4", "--recipe", "ptq4vit-fast", "--memory-budget", "0",
                             "--spill-dir", dir + "/none", "--out", out], mentions: ["--spill-dir"])
            return
        }
        let r = try CLIRunner.run(["quantize", model, "--data", data, "--calib", "4", "--recipe", "ptq4vit-fast", "--memory-budget", "0",
                                   "--spill-dir", fs.path, "--out", out])
        XCTAssertEqual(r.status, 1, "exit 1, not SIGBUS: \(r.status) \(r.stderr)")
        let errors = r.stderr.split(separator: "\n").filter { $0.contains("error") }
        XCTAssertEqual(errors.count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains(fs.path) && r.stderr.contains("bytes") && r.stderr.contains("No space left on device"), r.stderr)
        XCTAssertEqual(fs.entries, [], "no spill file is left")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    /// A worker that cannot stage the job's files in a full --spill-dir leaves no partial file there.
    func testStagingIntoAFullSpillDirLeavesNoPartialFile() throws {
        try Fixtures.require()
        guard let fs = SmallFilesystem(bytes: 256 << 10) else {
            XCTFail("cannot mount a tmpfs (needs root)")
            return
        }
        let out = dir + "/q.safetensors"
        let r = try CLIRunner.run(["quantize", model, "--data", data, "--calib", "4", "--recipe", "ptq4vit-fast", "--workers", "1",
                                   "--spill-dir", fs.path, "--out", out])
        XCTAssertEqual(r.status, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("cannot stage") && r.stderr.contains(fs.path) && r.stderr.contains("bytes needed"), r.stderr)
        XCTAssertEqual(fs.entries, [], "no partial staged file is left in --spill-dir")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    // MARK: item 17: keys

    func testKeygenWritesA0600SecretAndReadableSecretsAreRefused() throws {
        try Fixtures.require()
        let prefix = dir + "/c"
        let g = try CLIRunner.run(["keygen", "--out", prefix])
        XCTAssertEqual(g.status, 0, g.stderr)
        var st = stat()
        XCTAssertEqual(stat(prefix + ".key", &st), 0)
        XCTAssertEqual(st.st_mode & 0o777, 0o600)
        XCTAssertEqual(try CLIRunner.run(["keygen", "--out", prefix]).status, 1, "never overwrites a key")
        // A dangling symlink planted at PREFIX.key is not followed.
        let victim = dir + "/victim", planted = dir + "/p"
        XCTAssertEqual(symlink(victim, planted + ".key"), 0)
        try assertFails(["keygen", "--out", planted], mentions: [planted + ".key", "exists"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: victim))

        XCTAssertEqual(chmod(prefix + ".key", 0o644), 0)
        let coordinator = ["coordinator", model, "--data", data, "--calib", "2", "--recipe", "ptq4vit-fast", "--out", dir + "/missing/q.safetensors",
                           "--curve-secret", prefix + ".key", "--allow", prefix + ".pub"]
        try assertFails(coordinator, mentions: [prefix + ".key", "644", "--allow-readable-key"])
        // With the flag the key is accepted (the run then stops at the bad --out, before any work).
        try assertFails(coordinator + ["--allow-readable-key"], mentions: ["--out"])
        let worker = ["worker", "--connect", "tcp://127.0.0.1:9", "--curve-secret", prefix + ".key", "--server-key", prefix + ".pub", "--wait", "0.3"]
        try assertFails(worker, mentions: [prefix + ".key", "644", "--allow-readable-key"])
        let w = try CLIRunner.run(worker + ["--allow-readable-key"])
        XCTAssertEqual(w.status, 1)
        XCTAssertFalse(w.stderr.contains("--allow-readable-key"), w.stderr)
        XCTAssertEqual(chmod(prefix + ".key", 0o640), 0)
        try assertFails(worker, mentions: [prefix + ".key", "640"])
    }

    // MARK: item 18: endpoints and failed binds

    func testEndpointPortsAreChecked() throws {
        try Fixtures.require()
        let coordinator = ["coordinator", model, "--data", data, "--calib", "2", "--recipe", "ptq4vit-fast", "--out", dir + "/q.safetensors"]
        for bad in ["tcp://127.0.0.1:99999", "tcp://127.0.0.1:0", "tcp://127.0.0.1:", "tcp://127.0.0.1:12ab", "tcp://:5555", "udp://x:1"] {
            try assertFails(coordinator + ["--bind", bad], mentions: ["--bind", bad])
        }
        for bad in ["tcp://127.0.0.1:99999", "tcp://127.0.0.1:*", "tcp://127.0.0.1:-1"] {
            try assertFails(["worker", "--connect", bad], mentions: ["--connect", bad])
        }
    }

    /// Before the fix the journal was created before the bind, so the second start said
    /// "journal exists; pass --resume" instead of the bind error.
    func testAFailedBindLeavesNoJournal() throws {
        try Fixtures.require()
        let out = dir + "/q.safetensors"
        let args = ["coordinator", model, "--data", data, "--calib", "2", "--recipe", "ptq4vit-fast", "--out", out,
                    "--bind", "ipc://\(dir)/no/such/folder/c.ipc"]
        for _ in 0..<2 {
            let r = try CLIRunner.run(args)
            XCTAssertEqual(r.status, 1, r.stderr)
            XCTAssertFalse(r.stderr.contains("exists"), r.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out + ".journal"), "no journal after a failed bind")
        }
    }

    // MARK: item 14: the journal

    /// The fingerprint a coordinator run with `extra` flags expects, read from its refusal of a
    /// journal of another run.
    func fingerprint(_ extra: [String], journal: String) throws -> String {
        try AtomicFile.write(Data("{\"vitq_journal\":1,\"run\":\"other\"}\n".utf8), to: journal)
        let r = try CLIRunner.run(coordinatorArgs(journal: journal) + extra)
        XCTAssertEqual(r.status, 1, r.stderr)
        guard let range = r.stderr.range(of: "this is run ") else { XCTFail(r.stderr); return "" }
        return String(r.stderr[range.upperBound...].prefix(64))
    }

    func coordinatorArgs(journal: String) -> [String] {
        ["coordinator", model, "--data", data, "--calib", "4", "--recipe", "ptq4vit-fast", "--out", dir + "/q.safetensors",
         "--journal", journal, "--resume", "--bind", "ipc://\(dir)/c.ipc"]
    }

    func testTheJournalFingerprintCoversEveryInput() throws {
        try Fixtures.require()
        let journal = dir + "/run.journal"
        let base = try fingerprint([], journal: journal)
        XCTAssertEqual(base.count, 64)
        XCTAssertEqual(try fingerprint([], journal: journal), base, "the same run has the same fingerprint")
        let recipe = dir + "/r.yaml"
        try "name: ptq4vit-fast\nbase: ptq4vit-fast\nsearch_candidates: 21\n".write(toFile: recipe, atomically: true, encoding: .utf8)
        var seen = [base: "defaults"]
        for (what, flags) in [("--heads", ["--heads", "4"]), ("--arch", ["--arch", "deit_tiny_distilled_patch16_224"]),
                              ("--mean", ["--mean", "0.5,0.5,0.5"]), ("--crop-pct", ["--crop-pct", "0.9"]),
                              ("--calib-offset", ["--calib-offset", "1"]), ("--recipe", ["--recipe", recipe])] {
            let f = try fingerprint(flags, journal: journal)
            XCTAssertNil(seen[f], "\(what) changes the fingerprint (same as \(seen[f] ?? ""))")
            seen[f] = what
        }
    }

    /// Decision lines for op `op`, encoded as the coordinator journals them.
    func decisionLine(_ d: OpDecision) throws -> String {
        String(decoding: try ProtocolJSON.encoder().encode(d), as: UTF8.self)
    }

    /// A decision for `blocks.0.mlp.fc1` shaped as ptq4vit-fast searches it.
    func fc1Decision(weightScales: Int? = nil, bias: [Float]? = nil, inputScale: Float = 0.05) throws -> OpDecision {
        let s = try Recipe.load("ptq4vit-fast").search
        let n = 256
        let perChannel = s.weightGranularity == .perChannel
        let w = TensorQuant(scheme: s.weightScheme, granularity: perChannel ? .perChannel : .perTensor,
                            scales: [Float](repeating: 0.01, count: weightScales ?? (perChannel ? n : 1)))
        let x = TensorQuant(scheme: s.activationScheme, granularity: .perTensor, scales: [inputScale])
        return OpDecision(op: "blocks.0.mlp.fc1", quantizers: [.uniform(w), .uniform(x)], bias: bias)
    }

    func testReplayedDecisionsAreCheckedLikeFreshResults() throws {
        try Fixtures.require()
        let journal = dir + "/run.journal"
        let run = try fingerprint([], journal: journal)
        let header = "{\"vitq_journal\":1,\"run\":\"\(run)\"}"
        let good = try decisionLine(try fc1Decision())
        var unknown = try fc1Decision(); unknown.op = "blocks.7.mlp.fc1"
        let cases: [(String, [String], [String])] = [
            ("duplicate", [good, good], ["line 3", "blocks.0.mlp.fc1", "second decision"]),
            ("unknown op", [try decisionLine(unknown)], ["line 2", "blocks.7.mlp.fc1"]),
            ("scale count", [try decisionLine(try fc1Decision(weightScales: 3))], ["blocks.0.mlp.fc1", "weight", "3 scales"]),
            ("bias length", [try decisionLine(try fc1Decision(bias: [Float](repeating: 0, count: 5)))], ["blocks.0.mlp.fc1", "bias", "5 values", "256"]),
            ("non-finite", [try decisionLine(try fc1Decision(inputScale: -1))], ["blocks.0.mlp.fc1", "input", "finite"]),
        ]
        for (what, lines, needles) in cases {
            try ([header] + lines).map { $0 + "\n" }.joined().write(toFile: journal, atomically: false, encoding: .utf8)
            let r = try assertFails(coordinatorArgs(journal: journal), mentions: [journal] + needles)
            XCTAssertFalse(r.stderr.contains("listening"), "\(what): refused before the bind")
        }
    }

    // MARK: item 19: SIGKILL of quantize --workers

    /// The PIDs whose parent is `pid` (from /proc).
    func children(of pid: Int32) -> [Int32] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap { Int32($0) }.filter { child in
            guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == pid
        }
    }

    func alive(_ pid: Int32) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
        return !stat[stat.index(after: close)...].hasPrefix(" Z")
    }

    func testKillingQuantizeWithWorkersLeavesNoWorkersAndTheNextRunCleansItsFolder() throws {
        try Fixtures.require()
        let tmp = dir + "/tmp"
        try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CLIRunner.binary)
        p.arguments = ["quantize", Fixtures.vitTiny, "--data", data, "--calib", "8", "--recipe", "ptq4vit-fast", "--workers", "2",
                       "--out", dir + "/q.safetensors"]
        p.environment = ProcessInfo.processInfo.environment.merging(["TMPDIR": tmp + "/"]) { $1 }
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        var workers: [Int32] = []
        let deadline = Date().addingTimeInterval(60)
        while workers.count < 2 && Date() < deadline && p.isRunning {
            Thread.sleep(forTimeInterval: 0.1)
            workers = children(of: p.processIdentifier)
        }
        XCTAssertEqual(workers.count, 2, "two workers started")
        Thread.sleep(forTimeInterval: 0.5)
        let folder = LocalWorkersFolder.prefix(p.processIdentifier)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp).filter { $0.hasPrefix(folder) }.count, 1, "the run's folder")
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        let gone = Date().addingTimeInterval(5)
        while workers.contains(where: alive) && Date() < gone { Thread.sleep(forTimeInterval: 0.1) }
        XCTAssertFalse(workers.contains(where: alive), "the workers exit within 5 s of their parent's death")
        for w in workers where alive(w) { kill(w, SIGKILL) }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp).filter { $0.hasPrefix(folder) }.count, 1, "SIGKILL left its folder")
        // The next run (minmax-w8a8 on one worker, on the DeiT micro fixture) removes it.
        let r = try CLIRunner.run(["quantize", model, "--data", data, "--calib", "2", "--recipe", "minmax-w8a8", "--workers", "1",
                                   "--out", dir + "/q2.safetensors"], environment: ["TMPDIR": tmp + "/"])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp).filter { $0.hasPrefix(folder) }, [], "the stale folder is removed")
    }
}

/// The name of `quantize --workers`' private folder (`vitq-PID-…`, LocalWorkers.folderPrefix).
enum LocalWorkersFolder {
    static func prefix(_ pid: Int32) -> String { "vitq-\(pid)-" }
}
