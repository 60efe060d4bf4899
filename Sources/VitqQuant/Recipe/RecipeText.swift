import Foundation
import VitqFormats
import Yams

/// Recipe text to a flat key → value map, safely. The text is bounded before Yams parses it:
/// Yams' constructor expands aliases into fresh objects (a "billion laughs" file of 1 KB becomes
/// gigabytes) and its composer recurses into nested collections (100k-deep nesting overflows the
/// stack). A recipe is a flat mapping of scalars, so the bounds are far above anything a real
/// recipe needs. Only Yams' composer is used (events to nodes, aliases shared, not expanded);
/// the values are built here, because Yams' constructor traps on a non-string key
/// (`[a]: b`) and its integer conversion can overflow.
enum RecipeText {
    /// The largest recipe file, in bytes.
    static let maxBytes = 64 * 1024
    /// The deepest block nesting (an upper bound: indentation levels and leading `- ` / `? `
    /// indicators of a line).
    static let maxDepth = 32
    /// The most `[` and `{` in the whole text (an upper bound on flow nesting that needs no
    /// quote parsing, which an attacker could mislead; brackets in comments count too, so the
    /// bound is well above what a commented recipe holds, and far below what overflows Yams'
    /// recursive composer).
    static let maxFlowOpeners = 256
    /// The most aliases (`*name`); with so few, alias expansion stays under a few hundred nodes.
    static let maxAliases = 16

    /// Reads the recipe at `path`: a regular file (never a FIFO or a device, which could block
    /// or never end) of at most ``maxBytes`` bytes, in UTF-8.
    static func read(_ path: String) throws -> String {
        let data: Data
        do { data = try BoundedFile.read(path, maxBytes: maxBytes) } catch let e as FormatError {
            guard case let .io(_, message) = e else { throw RecipeError(path, "cannot read the recipe file") }
            throw RecipeError(path, "cannot read the recipe file: \(message == "not a regular file" ? "a recipe must be a regular file" : message)")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw RecipeError(path, "the recipe is not UTF-8 text") }
        return text
    }

    /// Throws a ``RecipeError`` naming `source` when `text` is over the size, depth or alias
    /// bounds. The scan ignores quoting, so it can only overestimate (a quoted `[` counts).
    static func check(_ text: String, source: String) throws {
        let bytes = Array(text.utf8)
        guard bytes.count <= maxBytes else { throw RecipeError(source, "the recipe is \(bytes.count) bytes; at most \(maxBytes)") }
        var indents: [Int] = []
        var flowOpeners = 0, aliases = 0, deepest = 0
        var i = 0
        while i < bytes.count {
            // One line: its indentation, leading indicators, then the rest.
            var col = 0
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 { col += 1; i += 1 }
            // Blank and comment-only lines do not end a block.
            if i == bytes.count || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x23 {
                while i < bytes.count, bytes[i] != 0x0A, bytes[i] != 0x0D { i += 1 }
                i += 1
                continue
            }
            while let last = indents.last, last >= col { indents.removeLast() }
            indents.append(col)
            var indicators = 0
            while i < bytes.count, bytes[i] == 0x2D || bytes[i] == 0x3F,   // '-' or '?'
                  i + 1 == bytes.count || [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i + 1]) {
                indicators += 1; i += 1
                while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 }
            }
            var previous: UInt8 = 0x20
            while i < bytes.count, bytes[i] != 0x0A, bytes[i] != 0x0D {   // a line ends at LF or CR
                let b = bytes[i]
                if b == 0x5B || b == 0x7B { flowOpeners += 1 }                       // '[' '{'
                if b == 0x2A, [0x20, 0x09, 0x5B, 0x7B, 0x2C, 0x3A].contains(previous) { aliases += 1 }   // '*' at a token start
                previous = b
                i += 1
            }
            deepest = max(deepest, indents.count + indicators)
            guard deepest <= maxDepth else { throw RecipeError(source, "nesting deeper than \(maxDepth) levels; a recipe is a flat mapping of keys to values") }
            guard flowOpeners <= maxFlowOpeners else {
                throw RecipeError(source, "more than \(maxFlowOpeners) '[' and '{' (a bound on flow nesting; comments count too); a recipe is a flat mapping of keys to values")
            }
            guard aliases <= maxAliases else { throw RecipeError(source, "more than \(maxAliases) YAML aliases; a recipe is a flat mapping of keys to values") }
            i += 1
        }
    }

    /// The top-level mapping of recipe `text` (checked by ``check(_:source:)`` first): string
    /// keys, each once, to scalar values (Int, Double, Bool, NSNull or String by YAML's tags),
    /// flat lists of them, or flat mappings of names to them.
    static func mapping(_ text: String, source: String) throws -> [String: Any] {
        try check(text, source: source)
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch {
            let message = "\(error)".split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
            throw RecipeError(source, "not valid YAML: \(message)")
        }
        guard let root = node, case let .mapping(pairs) = root else { throw RecipeError(source, "a recipe must be a YAML mapping of keys to values") }
        var out: [String: Any] = [:]
        for (k, v) in pairs {
            guard case let .scalar(key) = k else { throw RecipeError(source, "a recipe's keys must be plain strings, not lists or mappings") }
            guard out[key.string] == nil else { throw RecipeError(source, "key '\(key.string)' is given twice") }
            switch v {
            case let .scalar(value):
                out[key.string] = scalar(value.string, tag: v.tag.description)
            case let .sequence(items):
                // A flat list of scalars (`keep_float_ops`); the recipe's parser says which keys take one.
                out[key.string] = try items.map { item -> Any in
                    guard case let .scalar(value) = item else { throw RecipeError(source, "key '\(key.string)': a list of single values, not of lists or mappings") }
                    return scalar(value.string, tag: item.tag.description)
                }
            case let .mapping(inner):
                // A flat mapping of names to scalars (`module_bits`); the recipe's parser says which keys take one.
                var m: [String: Any] = [:]
                for (ik, iv) in inner {
                    guard case let .scalar(name) = ik, case let .scalar(value) = iv else {
                        throw RecipeError(source, "key '\(key.string)': a mapping of names to single values, not to lists or mappings")
                    }
                    guard m[name.string] == nil else { throw RecipeError(source, "key '\(key.string)': '\(name.string)' is given twice") }
                    m[name.string] = scalar(value.string, tag: iv.tag.description)
                }
                out[key.string] = m
            default:
                throw RecipeError(source, "key '\(key.string)' must be a single value, a list or a mapping of them")
            }
        }
        return out
    }

    /// A scalar as YAML 1.1's resolved `tag` says (Yams' resolver): an integer (decimal, 0x, 0o,
    /// 0b or leading-0 octal; nil on overflow), a float (with .inf and .nan), a bool, null, or
    /// else the text itself.
    static func scalar(_ text: String, tag: String) -> Any {
        switch tag {
        case Tag.Name.int.rawValue: return integer(text) ?? text
        case Tag.Name.float.rawValue: return float(text) ?? text
        case Tag.Name.bool.rawValue:
            switch text.lowercased() {
            case "yes", "true", "on": return true
            case "no", "false", "off": return false
            default: return text
            }
        case Tag.Name.null.rawValue: return NSNull()
        default: return text
        }
    }

    static func integer(_ text: String) -> Int? {
        var t = Substring(text.replacingOccurrences(of: "_", with: ""))
        var sign = ""
        if let c = t.first, c == "-" || c == "+" { sign = c == "-" ? "-" : ""; t = t.dropFirst() }
        let (digits, radix): (Substring, Int)
        if t.hasPrefix("0x") { (digits, radix) = (t.dropFirst(2), 16) }
        else if t.hasPrefix("0o") { (digits, radix) = (t.dropFirst(2), 8) }
        else if t.hasPrefix("0b") { (digits, radix) = (t.dropFirst(2), 2) }
        else if t.count > 1, t.hasPrefix("0") { (digits, radix) = (t.dropFirst(), 8) }
        else { (digits, radix) = (t, 10) }
        guard !digits.isEmpty, !digits.contains(":") else { return nil }   // sexagesimal stays text
        return Int(sign + digits, radix: radix)
    }

    static func float(_ text: String) -> Double? {
        let t = text.replacingOccurrences(of: "_", with: "")
        switch t.lowercased() {
        case ".inf", "+.inf": return .infinity
        case "-.inf": return -.infinity
        case ".nan": return .nan
        default: return t.contains(":") ? nil : Double(t)
        }
    }
}
