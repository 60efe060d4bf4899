import CVitqKernels
import Foundation
import VitqTensor
import XCTest

/// Every accelerated kernel against its scalar reference, from one table (``KernelPairs``): the
/// table must list every accelerated kernel the header declares, so a new variant cannot go
/// untested, and each pair must agree on seeded random inputs (bit for bit, or within the
/// documented float tolerance of the AVX2 exp/erf approximations).
final class KernelPairTests: XCTestCase {
    static let casesPerPair = 40

    func testTheTableListsEveryAcceleratedKernelInTheHeader() throws {
        let header = try String(contentsOfFile: KernelPairs.headerPath, encoding: .utf8)
        let accelerated = try KernelPairs.declaredAccelerated(header: header)
        XCTAssertGreaterThanOrEqual(accelerated.count, 20, "the header parse finds the AVX2 kernels: \(accelerated)")
        let listed = KernelPairs.all.map(\.accelerated)
        XCTAssertEqual(Set(listed).count, listed.count, "a kernel listed twice: \(listed)")
        for name in accelerated where !listed.contains(name) {
            XCTFail("\(name) is declared in vitq_kernels.h but KernelPairs.all has no entry comparing it with its reference")
        }
        let declared = try KernelPairs.declared(header: header)
        for pair in KernelPairs.all {
            XCTAssertTrue(accelerated.contains(pair.accelerated), "\(pair.accelerated) is not an accelerated kernel of vitq_kernels.h")
            XCTAssertTrue(declared.contains(pair.reference), "\(pair.reference) (the reference of \(pair.accelerated)) is not in vitq_kernels.h")
        }
    }

    /// The comparison itself: one ulp is a bit-for-bit failure, codes may be one apart and no more.
    func testAgreementsCatchDifferences() {
        XCTAssertNotNil(PairOutput("y", .bitEqual, reference: [1], accelerated: [Float(1).nextUp]).mismatch)
        XCTAssertNotNil(PairOutput("y", .bitEqual, reference: [0], accelerated: [-0.0]).mismatch)
        XCTAssertNil(PairOutput("y", .relative(1e-6), reference: [1], accelerated: [Float(1).nextUp]).mismatch)
        XCTAssertNotNil(PairOutput("y", .relative(1e-6), reference: [1], accelerated: [1.00001]).mismatch)
        XCTAssertNil(PairOutput("q", .codes(1), reference: [3, 4], accelerated: [4, 3]).mismatch)
        XCTAssertNotNil(PairOutput("q", .codes(1), reference: [3], accelerated: [5]).mismatch)
        XCTAssertNotNil(PairOutput("q", reference: [3], accelerated: [4]).mismatch)
        XCTAssertNotNil(PairOutput("q", reference: [3, 4], accelerated: [3]).mismatch)
    }

    func testEveryAcceleratedKernelAgreesWithItsReference() throws {
        guard vitq_cpu_has_avx2() != 0 else { return XCTFail("the AVX2 kernels need an AVX2+FMA CPU to be tested, and this one has none") }
        for (i, pair) in KernelPairs.all.enumerated() {
            guard pair.available() else { print("\(pair.accelerated): not run, this CPU does not have its instructions"); continue }
            var rng = SeededRandom(seed: 1000 + UInt64(i))
            for trial in 0..<Self.casesPerPair {
                for output in pair.run(&rng) {
                    if let mismatch = output.mismatch { XCTFail("\(pair.accelerated) vs \(pair.reference), case \(trial): \(mismatch)") }
                }
            }
        }
    }
}
