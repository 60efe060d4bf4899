import Foundation

/// The one JSON writer of the `--json` flags: one line on stdout with sorted keys.
/// Prints `value` (a report type) as one line of JSON.
func printJSON<T: Encodable>(_ value: T) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys]
    print(String(decoding: try enc.encode(value), as: UTF8.self))
}

/// Prints `object` (a report assembled field by field, with `NSNull` for JSON null) as one line of JSON.
func printJSON(object: [String: Any]) throws {
    print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
}
