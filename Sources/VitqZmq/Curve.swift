import CZmq
import Foundation
#if canImport(Glibc)
import Glibc
#endif

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

    /// The text of a secret key file (`PREFIX.key`, to be created with mode 0600).
    public static func secretFileText(_ pair: CurveKeyPair) -> String {
        "# vitq CURVE secret key: keep it private\n\(pair.secretKey)\n"
    }

    /// The text of a public key file (`PREFIX.pub`): the key on one line.
    public static func publicFileText(_ pair: CurveKeyPair) -> String { "\(pair.publicKey)\n" }

    /// The keys in a key file (a `.key` has one secret key, a `.pub` or allow-list public ones).
    public static func read(_ path: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CurveKeyError.unreadable(path: path, detail: "cannot read the key file")
        }
        return try keys(in: data, path: path)
    }

    /// The keys in the bytes of key file `path`.
    static func keys(in data: Data, path: String) throws -> [String] {
        guard let text = String(data: data, encoding: .utf8) else {
            throw CurveKeyError.unreadable(path: path, detail: "cannot read the key file (not UTF-8 text)")
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

    /// The pair of the secret key file `path`. Like ssh, a secret of this user's that the group
    /// or others may access, or anyone's that others may, is refused unless `allowReadable` (the
    /// `--allow-readable-key` flag); the mode is checked on the opened file.
    public static func readSecret(_ path: String, allowReadable: Bool = false) throws -> CurveKeyPair {
        let keys = try keys(in: try readSecretBytes(path, allowReadable: allowReadable), path: path)
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

extension CurveKeys {
    /// Permission bits that make a secret key file of one's own unprotected (group or other access).
    public static let unprotectedBits: mode_t = 0o077

    /// The bytes of the secret key file `path`, after its mode is checked on the open file.
    static func readSecretBytes(_ path: String, allowReadable: Bool) throws -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw CurveKeyError.unreadable(path: path, detail: "cannot read the key file: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw CurveKeyError.unreadable(path: path, detail: "cannot stat the key file: \(String(cString: strerror(errno)))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw CurveKeyError.unreadable(path: path, detail: "not a regular file") }
        let perms = st.st_mode & 0o777
        // ssh's rule: no access for others, and none for the group when the key is this user's own
        // (a root-owned 0440 key read through the group, as a Kubernetes secret volume with
        // fsGroup mounts it, is fine).
        let exposed = perms & 0o007 != 0 || (st.st_uid == getuid() && perms & unprotectedBits != 0)
        if !allowReadable && exposed {
            throw CurveKeyError.unreadable(path: path, detail: "secret key has mode \(String(perms, radix: 8)), open to the group or others; "
                                           + "chmod 600 it (or pass --allow-readable-key)")
        }
        guard st.st_size >= 0, st.st_size <= 1 << 16 else { throw CurveKeyError.badKey(source: path, detail: "too large for a key file (\(st.st_size) bytes)") }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        var got = 0
        while got < bytes.count {
            let n = bytes.withUnsafeMutableBytes { buf in buf.baseAddress.map { Glibc.read(fd, $0 + got, buf.count - got) } ?? 0 }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw CurveKeyError.unreadable(path: path, detail: "cannot read the key file: \(n < 0 ? String(cString: strerror(errno)) : "truncated")") }
            got += n
        }
        return Data(bytes)
    }
}
