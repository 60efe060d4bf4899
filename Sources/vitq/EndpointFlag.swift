/// Checks a `--bind` or `--connect` value before any socket exists: libzmq takes a port past
/// 65535 modulo 2^16 (`tcp://127.0.0.1:99999` binds 34463), so the port is checked here.
enum EndpointFlag {
    /// Throws one line naming `flag` unless `value` is `ipc://PATH` or `tcp://HOST:PORT` with
    /// PORT in 1...65535 (or `*`, an ephemeral port, when `allowWildcardPort`).
    static func check(_ value: String, flag: String, allowWildcardPort: Bool) throws {
        if value.hasPrefix("ipc://") {
            guard value.count > "ipc://".count else { throw FlagError("\(flag) \(value): ipc:// needs a path") }
            return
        }
        guard value.hasPrefix("tcp://") else { throw FlagError("\(flag) \(value): expected tcp://HOST:PORT or ipc://PATH") }
        let rest = value.dropFirst("tcp://".count)
        guard let colon = rest.lastIndex(of: ":"), colon > rest.startIndex else {
            throw FlagError("\(flag) \(value): expected tcp://HOST:PORT")
        }
        let port = rest[rest.index(after: colon)...]
        if port == "*" {
            guard allowWildcardPort else { throw FlagError("\(flag) \(value): connecting needs a port number in 1...65535") }
            return
        }
        guard !port.isEmpty, port.count <= 5, port.allSatisfy({ $0 >= "0" && $0 <= "9" }), let n = Int(port), (1...65535).contains(n) else {
            throw FlagError("\(flag) \(value): the port must be 1...65535\(allowWildcardPort ? " or *" : "")")
        }
    }
}
