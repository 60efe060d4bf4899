import CZmq
import Foundation

/// A CURVE key pair as 40-character Z85 text (ZeroMQ's RFC 32 encoding of the 32-byte keys).
public struct CurveKeyPair: Equatable, Sendable {
    public var publicKey: String
    public var secretKey: String

    /// A fresh random pair from libzmq.
    public static func generate() throws -> CurveKeyPair {
        guard ZmqContext.hasCurve else { throw ZmqError(call: "zmq_curve_keypair", subject: "libzmq built without CURVE", errno: ENOTSUP) }
        var pub = [CChar](repeating: 0, count: 41), sec = [CChar](repeating: 0, count: 41)
        try check(zmq_curve_keypair(&pub, &sec), "zmq_curve_keypair")
        return CurveKeyPair(publicKey: String(cString: pub), secretKey: String(cString: sec))
    }

    /// The pair of a secret key (the public key is derived from it).
    public init(secretKey: String) throws {
        guard CurveKeys.isKey(secretKey) else { throw CurveKeyError.badKey(source: "secret key", detail: "not a 40-character Z85 key") }
        var pub = [CChar](repeating: 0, count: 41)
        try check(zmq_curve_public(&pub, secretKey), "zmq_curve_public")
        self.init(publicKey: String(cString: pub), secretKey: secretKey)
    }

    public init(publicKey: String, secretKey: String) {
        self.publicKey = publicKey; self.secretKey = secretKey
    }
}

/// A key file that cannot be used.
public enum CurveKeyError: Error, CustomStringConvertible {
    case badKey(source: String, detail: String)
    case unreadable(path: String, detail: String)

    public var description: String {
        switch self {
        case let .badKey(source, detail): return "\(source): \(detail)"
        case let .unreadable(path, detail): return "\(path): \(detail)"
        }
    }
}

/// Key files: `NAME.key` holds the secret key (mode 0600), `NAME.pub` the public key, one line.
/// An allow-list is a file of public keys, one per line; blank lines and `#` comments are skipped.
public enum CurveKeys {
    /// Whether `text` is a 40-character Z85 key that decodes to 32 bytes.
    public static func isKey(_ text: String) -> Bool {
        guard text.utf8.count == 40 else { return false }
        var out = [UInt8](repeating: 0, count: 32)
        return zmq_z85_decode(&out, text) != nil
    }

    /// Z85 text of 32 raw key bytes (ZAP hands keys over raw).
    public static func z85(_ raw: [UInt8]) -> String? {
        guard raw.count == 32 else { return nil }
        var out = [CChar](repeating: 0, count: 41)
        return zmq_z85_encode(&out, raw, 32) == nil ? nil : String(cString: out)
    }

    /// Writes `PREFIX.key` (0600) and `PREFIX.pub`; refuses to overwrite either.
    public static func write(_ pair: CurveKeyPair, prefix: String) throws {
        let fm = FileManager.default
        for path in [prefix + ".key", prefix + ".pub"] where fm.fileExists(atPath: path) {
            throw CurveKeyError.unreadable(path: path, detail: "exists; refusing to overwrite a key")
        }
        let secret = "# vitq CURVE secret key: keep it private\n\(pair.secretKey)\n"
        guard fm.createFile(atPath: prefix + ".key", contents: Data(secret.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CurveKeyError.unreadable(path: prefix + ".key", detail: "cannot create")
        }
        guard fm.createFile(atPath: prefix + ".pub", contents: Data("\(pair.publicKey)\n".utf8)) else {
            throw CurveKeyError.unreadable(path: prefix + ".pub", detail: "cannot create")
        }
    }

    /// The keys in a key file (a `.key` has one secret key, a `.pub` or allow-list public ones).
    public static func read(_ path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw CurveKeyError.unreadable(path: path, detail: "cannot read the key file")
        }
        var keys: [String] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard isKey(line) else { throw CurveKeyError.badKey(source: "\(path):\(n + 1)", detail: "not a 40-character Z85 key") }
            keys.append(line)
        }
        guard !keys.isEmpty else { throw CurveKeyError.badKey(source: path, detail: "holds no key") }
        return keys
    }

    /// The pair of the secret key file `path`.
    public static func readSecret(_ path: String) throws -> CurveKeyPair {
        let keys = try read(path)
        guard keys.count == 1 else { throw CurveKeyError.badKey(source: path, detail: "a secret key file holds exactly one key") }
        return try CurveKeyPair(secretKey: keys[0])
    }

    /// The one public key in `path`.
    public static func readPublic(_ path: String) throws -> String {
        let keys = try read(path)
        guard keys.count == 1 else { throw CurveKeyError.badKey(source: path, detail: "expected one public key, found \(keys.count)") }
        return keys[0]
    }
}
