import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The bounds a recipe's text must keep before Yams parses it: Yams expands aliases into fresh
/// objects (a "billion laughs" file of 1 KB becomes gigabytes) and composes nested collections
/// recursively (100k-deep nesting overflows the stack). A recipe is a flat mapping of scalars,
/// so the bounds are far above anything a real recipe needs.
enum RecipeText {
    /// The largest recipe file, in bytes.
    static let maxBytes = 64 * 1024
    /// The deepest nesting (an upper bound: indentation levels and leading `- ` / `? ` indicators
    /// of a line, plus every `[` and `{` in the text).
    static let maxDepth = 32
    /// The most aliases (`*name`); with so few, alias expansion stays under a few hundred nodes.
    static let maxAliases = 16

    /// Reads the recipe at `path`: a regular file (never a FIFO or a device, which could block
    /// or never end) of at most ``maxBytes`` bytes, in UTF-8.
    static func read(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw RecipeError(path, "cannot read the recipe file: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw RecipeError(path, "cannot read the recipe file: \(String(cString: strerror(errno)))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw RecipeError(path, "a recipe must be a regular file") }
        guard st.st_size <= maxBytes else { throw RecipeError(path, "the recipe is \(st.st_size) bytes; at most \(maxBytes)") }
        var bytes = [UInt8](repeating: 0, count: maxBytes + 1)
        var n = 0
        while n < bytes.count {
            let r = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + n, $0.count - n) }
            if r < 0 && errno == EINTR { continue }
            guard r >= 0 else { throw RecipeError(path, "cannot read the recipe file: \(String(cString: strerror(errno)))") }
            if r == 0 { break }
            n += r
        }
        guard n <= maxBytes else { throw RecipeError(path, "the recipe is over \(maxBytes) bytes") }
        guard let text = String(bytes: bytes[0..<n], encoding: .utf8) else { throw RecipeError(path, "the recipe is not UTF-8 text") }
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
                while i < bytes.count, bytes[i] != 0x0A { i += 1 }
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
            while i < bytes.count, bytes[i] != 0x0A {
                let b = bytes[i]
                if b == 0x5B || b == 0x7B { flowOpeners += 1 }                       // '[' '{'
                if b == 0x2A, [0x20, 0x09, 0x5B, 0x7B, 0x2C, 0x3A].contains(previous) { aliases += 1 }   // '*' at a token start
                previous = b
                i += 1
            }
            deepest = max(deepest, indents.count + indicators + flowOpeners)
            guard deepest <= maxDepth else { throw RecipeError(source, "nesting deeper than \(maxDepth) levels; a recipe is a flat mapping of keys to values") }
            guard aliases <= maxAliases else { throw RecipeError(source, "more than \(maxAliases) YAML aliases; a recipe is a flat mapping of keys to values") }
            i += 1
        }
    }
}
