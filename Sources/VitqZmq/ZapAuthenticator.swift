import CZmq
import Foundation

/// ZeroMQ's authentication protocol (ZAP, RFC 27) for CURVE servers: a thread that answers
/// the context's authentication requests, accepting only client public keys in an allow-list.
/// Start it before the server socket binds; every refusal is reported through `onRefused`.
/// An accepted connection's user id is its public key (Z85), so the server can read which key
/// each message came from (``ZmqSocket/receiveWithUserID(timeoutMs:maxFrames:)``) and bound the
/// workers per key.
public final class ZapAuthenticator: @unchecked Sendable {
    private let socket: ZmqSocket
    private let allowed: Set<String>
    private let onRefused: @Sendable (String) -> Void
    private let lock = NSLock()
    private var stopping = false
    private let done = DispatchSemaphore(value: 0)

    /// Binds the context's ZAP endpoint and starts answering.
    public init(context: ZmqContext, allowedKeys: [String], onRefused: @escaping @Sendable (String) -> Void) throws {
        socket = try ZmqSocket(context, .rep)
        try socket.bind("inproc://zeromq.zap.01")
        allowed = Set(allowedKeys)
        self.onRefused = onRefused
        let t = Thread { [self] in serve() }
        t.name = "vitq-zap"
        t.start()
    }

    /// Stops the thread and closes the socket.
    public func stop() {
        lock.withLock { stopping = true }
        done.wait()
    }

    private var isStopping: Bool { lock.withLock { stopping } }

    private func serve() {
        defer { socket.close(); done.signal() }
        while !isStopping {
            guard let got = try? socket.receive(timeoutMs: 100, maxFrames: 8) else { continue }
            let f = got.frames
            // version, request id, domain, address, identity, mechanism, credentials…
            guard f.count >= 6 else { continue }
            let requestID = f[1]
            let address = String(decoding: f[3], as: UTF8.self)
            let mechanism = String(decoding: f[5], as: UTF8.self)
            var status = "400", text = "denied", userID = ""
            if mechanism == "CURVE", f.count == 7, let key = CurveKeys.z85([UInt8](f[6])) {
                if allowed.contains(key) { status = "200"; text = "OK"; userID = key } else {
                    onRefused("refused a worker at \(address): CURVE public key \(key) is not in the allow-list")
                }
            } else {
                onRefused("refused a peer at \(address): mechanism \(mechanism), expected CURVE")
            }
            let reply = [Data("1.0".utf8), requestID, Data(status.utf8), Data(text.utf8), Data(userID.utf8), Data()]
            _ = try? socket.send(reply)
        }
    }
}
