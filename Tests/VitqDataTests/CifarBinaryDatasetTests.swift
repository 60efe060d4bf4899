import Foundation
import VitqData
import VitqTestSupport
import XCTest

/// The CIFAR-10 binary batch reader against the real fixture and numpy.
final class CifarBinaryDatasetTests: XCTestCase {
    static let cifarPreprocess: PreprocessConfig = {
        var p = PreprocessConfig()
        p.inputSize = 32; p.cropPct = 1; p.mean = [0.4914, 0.4822, 0.4465]; p.std = [0.2023, 0.1994, 0.2010]
        return p
    }()

    func testTheFixtureBatchGivesTheOfficialLabelsAndNumpysPixels() throws {
        try Fixtures.require()
        let ds = try CifarBinaryDataset(path: Fixtures.cifarImages, preprocess: Self.cifarPreprocess)
        XCTAssertEqual(ds.count, 932)
        // The official CIFAR-10 test set begins 3 8 8 0 6 6 1 6 3 1 (SOURCES.md §3).
        XCTAssertEqual(Array(ds.labels!.prefix(10)), [3, 8, 8, 0, 6, 6, 1, 6, 3, 1])
        let t = try ds.batch([0, 931], size: 32)
        // numpy: record r's planes, x/255, then (x - mean)/std, as float32.
        let script = """
        import numpy as np, sys
        raw = np.fromfile(sys.argv[1], dtype=np.uint8).reshape(-1, 3073)
        x = raw[[0, 931], 1:].reshape(2, 3, 32, 32).astype(np.float32) / np.float32(255)
        m = np.array([0.4914, 0.4822, 0.4465], np.float32).reshape(1, 3, 1, 1)
        s = np.array([0.2023, 0.1994, 0.2010], np.float32).reshape(1, 3, 1, 1)
        ((x - m) / s).astype(np.float32).tofile('ref.f32')
        """
        let dir = makeTempDir()
        try PythonImages.run(script.replacingOccurrences(of: "sys.argv[1]", with: "'\(Fixtures.cifarImages)'"), in: dir)
        let out = try Data(contentsOf: URL(fileURLWithPath: dir + "/ref.f32"))
        let ref = out.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        XCTAssertEqual(ref.count, t.count)
        XCTAssertLessThan(relativeError(t.array, ref), 1e-6)
    }

    func testABatchThatIsNotWholeRecordsIsRefusedNamingTheFile() throws {
        let dir = makeTempDir()
        let path = dir + "/short.bin"
        try Data(count: 3073 * 2 + 5).write(to: URL(fileURLWithPath: path))
        XCTAssertThrowsError(try CifarBinaryDataset(path: path, preprocess: Self.cifarPreprocess)) {
            XCTAssertTrue("\($0)".contains(path), "\($0)")
            XCTAssertTrue("\($0)".contains("whole number of CIFAR records"), "\($0)")
        }
        let empty = dir + "/empty.bin"
        try Data().write(to: URL(fileURLWithPath: empty))
        XCTAssertThrowsError(try CifarBinaryDataset(path: empty, preprocess: Self.cifarPreprocess))
    }
}
