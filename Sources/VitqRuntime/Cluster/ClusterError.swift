import Foundation

/// A distributed run that cannot go on, in one line naming the file, endpoint or peer.
public enum ClusterError: Error, CustomStringConvertible {
    case system(String, Int32)
    case insecureEndpoint(String)
    case badEndpoint(String)
    case journal(path: String, detail: String)
    case aborted(String)
    case refused(endpoint: String, detail: String)
    case unreachable(endpoint: String, seconds: Double)
    case integrity(what: String, detail: String)
    case job(String)
    case workerFailed(String)

    public var description: String {
        switch self {
        case let .system(call, e): return "\(call): \(String(cString: strerror(e)))"
        case let .insecureEndpoint(ep):
            return "\(ep): refusing to bind a non-loopback endpoint without CURVE keys (give --curve-secret and --allow, or --insecure)"
        case let .badEndpoint(ep): return "\(ep): expected tcp://HOST:PORT or ipc://PATH"
        case let .journal(path, detail): return "\(path): \(detail)"
        case let .aborted(why): return "run aborted: \(why)"
        case let .refused(ep, detail): return "\(ep): the coordinator refused this worker: \(detail)"
        case let .unreachable(ep, s): return "\(ep): no coordinator answered in \(Int(s)) s (is it running, and is the endpoint right?)"
        case let .integrity(what, detail): return "\(what): \(detail)"
        case let .job(why): return "bad job: \(why)"
        case let .workerFailed(why): return why
        }
    }
}

/// Endpoint rules (Docs/PROTOCOL.md §6).
public enum Endpoint {
    /// Whether `endpoint` is `ipc://…` or a loopback `tcp://` address.
    public static func isLocal(_ endpoint: String) -> Bool {
        if endpoint.hasPrefix("ipc://") || endpoint.hasPrefix("inproc://") { return true }
        guard endpoint.hasPrefix("tcp://") else { return false }
        let rest = endpoint.dropFirst("tcp://".count)
        return rest.hasPrefix("127.") || rest.hasPrefix("localhost:") || rest.hasPrefix("[::1]:")
    }

    /// Checks the scheme: `tcp://HOST:PORT` or `ipc://PATH`.
    public static func validate(_ endpoint: String) throws {
        if endpoint.hasPrefix("ipc://"), endpoint.count > 6 { return }
        if endpoint.hasPrefix("tcp://"), let colon = endpoint.lastIndex(of: ":"), colon > endpoint.index(endpoint.startIndex, offsetBy: 6),
           !endpoint[endpoint.index(after: colon)...].isEmpty { return }
        throw ClusterError.badEndpoint(endpoint)
    }
}
