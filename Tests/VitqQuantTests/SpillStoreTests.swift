import Foundation
import VitqQuant
import VitqTestSupport
import XCTest

/// Stage-1 spill files: their space is reserved before they are mapped, so a full disk is one
/// error line naming the folder and the bytes (not a SIGBUS at the first write of a page), and
/// no spill file is ever left in the folder.
final class SpillStoreTests: XCTestCase {
    /// On a 1 MiB tmpfs a 4 MiB tensor cannot be reserved. Before the fix the file was made
    /// sparse with ftruncate and mapped: creating it succeeded and the first write past 1 MiB
    /// was a SIGBUS. Where nothing can be mounted, the fallback checks that the blocks of a
    /// 64 MiB spill file are really taken from the file system (a sparse file takes none).
    func testAFullSpillDiskIsAnErrorNamingTheFolderAndTheBytes() throws {
        if let fs = SmallFilesystem(bytes: 1 << 20) {
            let store = CalibrationStore(images: 0..<4, memoryBudget: 0, spillDirectory: fs.path)
            let small = try store.tensor("small", imageShape: [16, 16])   // 4 KiB fits
            for i in 0..<(4 * 256) { small.image(0)[i] = 1 }
            XCTAssertTrue(small.spilled)
            XCTAssertThrowsError(try store.tensor("big", imageShape: [256, 1024])) { e in
                let text = "\(e)"
                XCTAssertTrue(text.contains(fs.path), text)
                XCTAssertTrue(text.contains("\(4 * 256 * 1024 * 4) bytes"), text)
                XCTAssertTrue(text.contains("No space left on device"), text)
                XCTAssertFalse(text.contains("\n"), text)
            }
            XCTAssertEqual(fs.entries, [], "no spill file is left in the folder")
        } else {
            let dir = makeTempDir()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let before = freeBytes(dir)
            let store = CalibrationStore(images: 0..<16, memoryBudget: 0, spillDirectory: dir)
            let t = try store.tensor("big", imageShape: [1024, 1024])
            XCTAssertTrue(t.spilled)
            XCTAssertGreaterThanOrEqual(before - freeBytes(dir), 60 << 20, "the spill file's blocks are reserved")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
        }
    }

    /// A size whose product overflows is an error, not a trap.
    func testAnOverflowingSizeIsAnError() throws {
        let store = CalibrationStore(images: 0..<(1 << 20), memoryBudget: Int.max)
        XCTAssertThrowsError(try store.tensor("huge", imageShape: [1 << 30, 1 << 30])) { e in
            XCTAssertTrue("\(e)".contains("too large"), "\(e)")
        }
    }

    /// Spilled tensors hold what was written, and the folder stays empty (files are unlinked at once).
    func testSpilledTensorsRoundTripAndLeaveNoFile() throws {
        let dir = makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = CalibrationStore(images: 0..<3, memoryBudget: 0, spillDirectory: dir)
        let t = try store.tensor("x", imageShape: [5, 7])
        for i in 0..<3 { for j in 0..<35 { t.image(i)[j] = Float(i * 100 + j) } }
        XCTAssertTrue(t.spilled)
        XCTAssertEqual(store.bytesSpilled, 3 * 35 * 4)
        XCTAssertEqual(t.image(2)[34], 234)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }

    /// One budget for all the shards of a process: the second shard's tensor spills once the
    /// first's used the budget up, and a dropped store gives its bytes back.
    func testShardsShareOneBudgetAndDroppedStoresGiveItBack() throws {
        let dir = makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let budget = MemoryBudget(limit: 3 * 100 * 4)
        var first: CalibrationStore? = CalibrationStore(images: 0..<3, budget: budget, spillDirectory: dir)
        XCTAssertFalse(try first!.tensor("x", imageShape: [100]).spilled)
        let second = CalibrationStore(images: 3..<6, budget: budget, spillDirectory: dir)
        XCTAssertTrue(try second.tensor("x", imageShape: [100]).spilled, "the budget is the process's, not the shard's")
        XCTAssertEqual(budget.used, 1200)
        first = nil
        XCTAssertEqual(budget.used, 0)
        let third = CalibrationStore(images: 6..<9, budget: budget, spillDirectory: dir)
        XCTAssertFalse(try third.tensor("x", imageShape: [100]).spilled)
    }

    /// Releasing a spilled tensor's pages keeps what was written (it is read back from the file).
    func testReleasedPagesReadBackFromTheFile() throws {
        let dir = makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = CalibrationStore(images: 0..<4, memoryBudget: 0, spillDirectory: dir)
        let t = try store.tensor("x", imageShape: [3000])
        for i in 0..<4 { for j in 0..<3000 { t.image(i)[j] = Float(i * 3000 + j) } }
        t.releasePages(images: 1..<2)
        store.releaseSpilledPages()
        for i in 0..<4 { for j in stride(from: 0, to: 3000, by: 7) { XCTAssertEqual(t.image(i)[j], Float(i * 3000 + j)) } }
    }
}
