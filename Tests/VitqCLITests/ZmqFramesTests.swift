import Foundation
import VitqZmq
import XCTest

/// The one send loop and the one receive loop of ``ZmqSocket`` over a real inproc pair: copied
/// frames, shared frames and the ROUTER's routing-id frame arrive byte for byte.
final class ZmqFramesTests: XCTestCase {
    func testCopiedAndSharedFramesArriveThroughTheSingleSendAndReceiveLoops() throws {
        let context = try ZmqContext()
        let router = try ZmqSocket(context, .router)
        try router.bind("inproc://frames")
        let dealer = try ZmqSocket(context, .dealer)
        try dealer.connect("inproc://frames")
        let big = Data((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        XCTAssertEqual(try dealer.send([Data([1, 2]), Data(), big]), 2 + big.count)
        let got = try XCTUnwrap(try router.receive(timeoutMs: 5000))
        XCTAssertFalse(got.truncated)
        XCTAssertEqual(got.frames.count, 4)   // routing id + 3
        XCTAssertEqual(Array(got.frames.dropFirst()), [Data([1, 2]), Data(), big])
        let shared = SharedFrame(big)
        try router.send(frames: [.bytes(got.frames[0]), .bytes(Data([9])), .shared(shared), .shared(shared)])
        let back = try XCTUnwrap(try dealer.receiveWithUserID(timeoutMs: 5000))
        XCTAssertEqual(back.frames, [Data([9]), big, big])
        XCTAssertNil(back.userID)
        // More frames than kept: drained and marked truncated.
        try dealer.send((0..<10).map { Data([UInt8($0)]) })
        let cut = try XCTUnwrap(try router.receive(timeoutMs: 5000, maxFrames: 3))
        XCTAssertTrue(cut.truncated)
        XCTAssertEqual(cut.frames.count, 3)
    }
}
