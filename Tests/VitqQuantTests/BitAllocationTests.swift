import Foundation
import VitqQuant
import VitqTensor
import VitqTestSupport
import XCTest

/// The bit allocation against brute force, and the nuclear norm against numpy.
final class BitAllocationTests: XCTestCase {
    func testAllocationEqualsBruteForceAndItsFrontier() {
        var rng = SeededRandom(seed: 7)
        let widths = [4, 6, 8]
        let modules = (0..<7).map { i -> BitAllocation.Module in
            let params = [96, 192, 288][Int(rng.next() % 3)]
            // Ω falls with the width, at a module-dependent rate.
            let s = Double(rng.next() % 1000 + 1)
            return BitAllocation.Module(name: "m\(i)", weightParameters: params, activationElements: Double(params),
                                        omega: widths.map { s / Double(1 << (2 * $0)) })
        }
        let total = modules.reduce(0) { $0 + $1.weightParameters }
        for budget in [4.0, 5.0, 5.5, 6.0, 7.0, 8.0] {
            let r = BitAllocation.allocate(modules, widths: widths, averageBits: budget)
            // Brute force over all 3^7 allocations.
            var best = Double.infinity
            for code in 0..<2187 {
                var c = code, bits = 0, omega = 0.0
                for m in modules { let k = c % 3; c /= 3; bits += m.weightParameters * widths[k]; omega += m.omega[k] }
                if Double(bits) <= budget * Double(total) { best = min(best, omega) }
            }
            XCTAssertEqual(r.omega, best, accuracy: best * 1e-12, "budget \(budget)")
            XCTAssertLessThanOrEqual(r.averageWeightBits, budget + 1e-12)
            XCTAssertLessThanOrEqual(r.averageActivationBits, budget + 1e-12)
            XCTAssertEqual(r.frontier.first?.averageWeightBits, 4)
            XCTAssertEqual(r.frontier.last?.averageWeightBits, 8)
            XCTAssertTrue(zip(r.frontier, r.frontier.dropFirst()).allSatisfy { $0.omega > $1.omega && $0.averageWeightBits < $1.averageWeightBits })
        }
    }

    func testActivationBudgetIsMetByTheMultiplier() {
        // Module a: few weights, many activations, and the most to gain from 8 bits.
        let a = BitAllocation.Module(name: "a", weightParameters: 10, activationElements: 1000, omega: [100, 1])
        let b = BitAllocation.Module(name: "b", weightParameters: 1000, activationElements: 10, omega: [10, 9])
        let r = BitAllocation.allocate([a, b], widths: [4, 8], averageBits: 5)
        // Weights alone would give a 8 bits (average 4.04 weight bits, 7.96 activation bits).
        XCTAssertEqual(r.bits, [4, 4])
        XCTAssertGreaterThan(r.lambda, 0)
        XCTAssertLessThanOrEqual(r.averageActivationBits, 5)
    }

    func testNuclearNormMatchesNumpy() throws {
        let dir = makeTempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var rng = SeededRandom(seed: 11)
        for (m, n) in [(37, 19), (12, 40), (33, 33)] {
            let a = (0..<(m * n)).map { _ in Float(rng.normal()) }
            let path = dir + "/a.bin"
            try a.withUnsafeBufferPointer { Data(buffer: $0) }.write(to: URL(fileURLWithPath: path))
            let script = "import numpy as np; a = np.fromfile('\(path)', dtype='<f4').astype(np.float64).reshape(\(m), \(n)); print(repr(float(np.linalg.norm(a, 'nuc'))))"
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["python3", "-c", script]
            let pipe = Pipe()
            p.standardOutput = pipe
            try p.run(); p.waitUntilExit()
            XCTAssertEqual(p.terminationStatus, 0, "numpy must be installed (Deploy/test.sh installs it)")
            let want = try XCTUnwrap(Double(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)))
            let got = try XCTUnwrap(a.withUnsafeBufferPointer { NuclearNorm.of($0.baseAddress!, rows: m, cols: n) })
            XCTAssertEqual(got, want, accuracy: want * 1e-10, "\(m)×\(n)")
        }
        // By hand: a diagonal matrix's nuclear norm is Σ|d|.
        let d: [Float] = [3, 0, 0, 0, -4, 0]
        XCTAssertEqual(d.withUnsafeBufferPointer { NuclearNorm.of($0.baseAddress!, rows: 2, cols: 3) }!, 7, accuracy: 1e-12)
    }
}
