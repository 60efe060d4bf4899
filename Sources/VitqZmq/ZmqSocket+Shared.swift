import CZmq
import Foundation

/// Bytes copied once and sent to any number of peers without another copy: every message
/// made from it holds a reference (zero-copy `zmq_msg_init_data`), released by libzmq when the
/// message is sent or dropped. A JOB's inline model and images are sent this way, so peers
/// that connect and never read do not each pin a copy of them.
public final class SharedFrame: @unchecked Sendable {
    let bytes: UnsafeMutableRawBufferPointer

    public init(_ data: Data) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, data.count), alignment: 64)
        data.withUnsafeBytes { if let base = $0.baseAddress, let to = buffer.baseAddress { to.copyMemory(from: base, byteCount: data.count) } }
        bytes = buffer
        count = data.count
    }

    /// The number of bytes.
    public let count: Int

    deinit { bytes.deallocate() }
}

/// One frame of a message: bytes to copy, or a ``SharedFrame``.
public enum ZmqFrame: Sendable {
    case bytes(Data)
    case shared(SharedFrame)

    var count: Int {
        switch self {
        case let .bytes(d): return d.count
        case let .shared(s): return s.count
        }
    }
}

extension ZmqSocket {
    /// Sends `frames` as one multipart message, shared frames without a copy. With `dontWait`,
    /// a full queue (the peer's `ZMQ_SNDHWM`) throws `EAGAIN` at once instead of blocking.
    @discardableResult
    public func send(frames: [ZmqFrame], dontWait: Bool = false) throws -> Int {
        let s = try raw
        var total = 0
        for (i, frame) in frames.enumerated() {
            var flags: Int32 = i + 1 < frames.count ? ZMQ_SNDMORE : 0
            if dontWait { flags |= ZMQ_DONTWAIT }
            var msg = zmq_msg_t()
            switch frame {
            case let .bytes(data):
                guard zmq_msg_init_size(&msg, data.count) == 0 else { throw ZmqError.last("zmq_msg_init_size") }
                if data.count > 0 { data.withUnsafeBytes { _ = memcpy(zmq_msg_data(&msg), $0.baseAddress!, data.count) } }
            case let .shared(shared):
                let hint = Unmanaged.passRetained(shared).toOpaque()
                let rc = zmq_msg_init_data(&msg, shared.bytes.baseAddress, shared.count, { _, hint in
                    if let hint { Unmanaged<SharedFrame>.fromOpaque(hint).release() }
                }, hint)
                guard rc == 0 else { Unmanaged<SharedFrame>.fromOpaque(hint).release(); throw ZmqError.last("zmq_msg_init_data") }
            }
            while true {
                if zmq_msg_send(&msg, s, flags) >= 0 { break }
                let e = ZmqError.last("zmq_msg_send")
                if e.interrupted { continue }
                zmq_msg_close(&msg)
                throw e
            }
            total += frame.count
        }
        return total
    }

    /// ``receive(timeoutMs:maxFrames:)`` that also returns the ZAP user id of the connection the
    /// message came from (for a CURVE server whose ``ZapAuthenticator`` names each peer by its
    /// public key; nil without one).
    public func receiveWithUserID(timeoutMs: Int32, maxFrames: Int = 8) throws -> (frames: [Data], truncated: Bool, userID: String?)? {
        guard try poll(timeoutMs: timeoutMs) else { return nil }
        let s = try raw
        var frames: [Data] = []
        var truncated = false
        var userID: String?
        while true {
            var msg = zmq_msg_t()
            zmq_msg_init(&msg)
            defer { zmq_msg_close(&msg) }
            while zmq_msg_recv(&msg, s, frames.isEmpty && !truncated ? ZMQ_DONTWAIT : 0) < 0 {
                let e = ZmqError.last("zmq_msg_recv")
                if e.interrupted { continue }
                if e.wouldBlock && frames.isEmpty && !truncated { return nil }
                throw e
            }
            // A ROUTER makes the routing-id frame itself, without the connection's metadata: read it from the others.
            if userID == nil, let p = zmq_msg_gets(&msg, "User-Id") { userID = String(cString: p) }
            if frames.count < maxFrames {
                frames.append(Data(bytes: zmq_msg_data(&msg), count: zmq_msg_size(&msg)))
            } else {
                truncated = true
            }
            if zmq_msg_more(&msg) == 0 { break }
        }
        return (frames, truncated, userID.flatMap { $0.isEmpty ? nil : $0 })
    }

    /// Sets `ZMQ_SNDHWM`: at most `messages` messages are queued per peer.
    public func setSendHighWaterMark(_ messages: Int) throws {
        try set(ZMQ_SNDHWM, Int32(clamping: messages))
    }
}
