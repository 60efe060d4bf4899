import Foundation

/// A strict pickle VM for PyTorch state dicts: it knows only the opcodes `torch.save` writes for a
/// state dict and only the globals `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2` and
/// `torch.{Float,Half,BFloat16}Storage`. Nothing is ever called or imported: REDUCE of an allowed
/// global builds a dict or a tensor description; anything else is refused with one line.
struct StateDictUnpickler {
    /// A storage named by a persistent id: its archive key, dtype and element count.
    struct Storage { let key: String; let dtype: DType; let numel: Int }
    /// A tensor `_rebuild_tensor_v2` describes: a strided view of a storage.
    struct TensorRef { let storage: Storage; let offset: Int; let size: [Int]; let stride: [Int] }
    final class DictBox { var items: [(Value, Value)] = [] }
    final class ListBox { var items: [Value] = [] }
    indirect enum Value {
        case none, bool(Bool), int(Int), float(Double), string(String), tuple([Value])
        case dict(DictBox), list(ListBox), global(String), storage(Storage), tensor(TensorRef), mark
    }

    static let allowed: [String: DType?] = [
        "collections.OrderedDict": nil, "torch._utils._rebuild_tensor_v2": nil,
        "torch.FloatStorage": .f32, "torch.HalfStorage": .f16, "torch.BFloat16Storage": .bf16,
    ]
    static let maxStack = 100_000, maxMemo = 1 << 20, maxString = 1 << 20, maxItems = 1 << 22

    let path: String
    let object: String

    func fail(_ d: String) -> FormatError { .badCheckpoint(path: path, object: object, detail: d) }

    /// Runs `bytes` and returns the top object.
    func run(_ bytes: UnsafeRawBufferPointer) throws -> Value {
        var pos = 0
        var stack: [Value] = []
        var marks: [Int] = []
        var memo: [Int: Value] = [:]
        var items = 0
        func take(_ k: Int) throws -> UnsafeRawBufferPointer {
            guard k >= 0, k <= bytes.count - pos else { throw FormatError.truncated(path: path, detail: "\(object): pickle ends inside an opcode") }
            defer { pos += k }
            return UnsafeRawBufferPointer(rebasing: bytes[pos..<(pos + k)])
        }
        func le(_ k: Int) throws -> UInt64 {
            let s = try take(k); var v: UInt64 = 0
            for (i, x) in s.enumerated() { v |= UInt64(x) << (8 * UInt64(i)) }
            return v
        }
        func pop() throws -> Value { guard let v = stack.popLast() else { throw fail("pickle stack underflow") }; return v }
        func push(_ v: Value) throws {
            guard stack.count < Self.maxStack else { throw fail("pickle stack deeper than \(Self.maxStack)") }
            stack.append(v)
        }
        func popMark() throws -> [Value] {
            guard let m = marks.popLast(), m <= stack.count else { throw fail("pickle MARK missing") }
            let out = Array(stack[m...]); stack.removeSubrange(m...)
            items += out.count
            guard items <= Self.maxItems else { throw fail("pickle holds more than \(Self.maxItems) items") }
            return out
        }
        func str(_ k: UInt64) throws -> String {
            guard k <= UInt64(Self.maxString) else { throw fail("pickle string of \(k) bytes is implausibly long") }
            guard let s = String(bytes: try take(Int(k)), encoding: .utf8) else { throw fail("pickle string is not UTF-8") }
            return s
        }
        func memoPut(_ i: Int) throws {
            guard i >= 0, i < Self.maxMemo else { throw fail("pickle memo index \(i) out of range") }
            guard let top = stack.last else { throw fail("pickle memo put on an empty stack") }
            memo[i] = top
        }
        func memoGet(_ i: Int) throws -> Value {
            guard let v = memo[i] else { throw fail("pickle memo index \(i) was never set") }
            return v
        }
        func setItems(_ kv: [Value]) throws {
            guard kv.count % 2 == 0, case let .dict(d)? = stack.last else { throw fail("SETITEM(S) not on a dict") }
            for i in stride(from: 0, to: kv.count, by: 2) {
                guard case let .string(k) = kv[i] else { throw fail("a dict key is not a string") }
                if d.items.contains(where: { if case let .string(x) = $0.0 { return x == k }; return false }) {
                    throw fail("dict key '\(k)' appears twice")
                }
                d.items.append((kv[i], kv[i + 1]))
            }
        }
        while true {
            let op = try take(1)[0]
            switch op {
            case 0x80: let v = try le(1); guard (2...5).contains(v) else { throw fail("pickle protocol \(v) is not 2–5") }
            case 0x95: _ = try le(8)  // FRAME: the length only groups opcodes
            case 0x2E:  // STOP
                guard stack.count == 1, marks.isEmpty else { throw fail("pickle ends with \(stack.count) objects on the stack") }
                return stack[0]
            case 0x63:  // GLOBAL
                var line: [UInt8] = []
                for _ in 0..<2 {
                    var part: [UInt8] = []
                    while true {
                        let c = try take(1)[0]; if c == 0x0A { break }
                        part.append(c); guard part.count < 256 else { throw fail("GLOBAL name too long") }
                    }
                    if !line.isEmpty { line.append(0x2E) }
                    line += part
                }
                try push(try global(String(decoding: line, as: UTF8.self)))
            case 0x93:  // STACK_GLOBAL
                let n = try pop(), m = try pop()
                guard case let .string(ns) = n, case let .string(ms) = m else { throw fail("STACK_GLOBAL of non-strings") }
                try push(try global(ms + "." + ns))
            case 0x71: try memoPut(Int(try le(1)))
            case 0x72: try memoPut(Int(try le(4)))
            case 0x94: try memoPut(memo.count)
            case 0x68: try push(try memoGet(Int(try le(1))))
            case 0x6A: try push(try memoGet(Int(try le(4))))
            case 0x28: guard marks.count < Self.maxStack else { throw fail("too many MARKs") }; marks.append(stack.count)
            case 0x29: try push(.tuple([]))
            case 0x74: try push(.tuple(try popMark()))
            case 0x85: let a = try pop(); try push(.tuple([a]))
            case 0x86: let b = try pop(), a = try pop(); try push(.tuple([a, b]))
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); try push(.tuple([a, b, c]))
            case 0x7D: try push(.dict(DictBox()))
            case 0x5D: try push(.list(ListBox()))
            case 0x61:
                let v = try pop(); guard case let .list(l)? = stack.last else { throw fail("APPEND not on a list") }
                items += 1; guard items <= Self.maxItems else { throw fail("too many items") }
                l.items.append(v)
            case 0x65:
                let vs = try popMark(); guard case let .list(l)? = stack.last else { throw fail("APPENDS not on a list") }
                l.items += vs
            case 0x73: let v = try pop(), k = try pop(); items += 1; try setItems([k, v])
            case 0x75: try setItems(try popMark())
            case 0x4A: try push(.int(Int(Int32(bitPattern: UInt32(try le(4))))))
            case 0x4B: try push(.int(Int(try le(1))))
            case 0x4D: try push(.int(Int(try le(2))))
            case 0x8A:  // LONG1
                let k = Int(try le(1)); guard k <= 8 else { throw fail("LONG1 of \(k) bytes does not fit 64 bits") }
                if k == 0 { try push(.int(0)); break }
                var v = try le(k)
                if k < 8, v & (1 << (8 * UInt64(k) - 1)) != 0 { v |= ~((1 << (8 * UInt64(k))) - 1) }
                try push(.int(Int(Int64(bitPattern: v))))
            case 0x88: try push(.bool(true))
            case 0x89: try push(.bool(false))
            case 0x4E: try push(.none)
            case 0x58: try push(.string(try str(try le(4))))
            case 0x8C: try push(.string(try str(try le(1))))
            case 0x8D: try push(.string(try str(try le(8))))
            case 0x47: let s = try take(8); try push(.float(Double(bitPattern: UInt64(bigEndian: s.loadUnaligned(as: UInt64.self)))))
            case 0x51: try push(try persistent(try pop()))
            case 0x52: let args = try pop(), f = try pop(); try push(try reduce(f, args))
            case 0x62:  // BUILD: only an OrderedDict's `_metadata` state, ignored
                let state = try pop()
                guard case .dict? = stack.last, case let .dict(s) = state,
                      s.items.allSatisfy({ if case .string("_metadata") = $0.0 { return true }; return false })
                else { throw fail("refused BUILD (a state dict sets state only as an OrderedDict's _metadata)") }
            case 0x69, 0x6F, 0x81, 0x92, 0x82, 0x83, 0x84:
                throw fail("refused opcode 0x\(String(op, radix: 16)) (INST/OBJ/NEWOBJ/EXT build arbitrary objects; a state dict holds only OrderedDict, _rebuild_tensor_v2 and float storages)")
            default:
                throw fail("refused unknown or unsupported pickle opcode 0x\(String(op, radix: 16)) at byte \(pos - 1)")
            }
        }
    }

    func global(_ name: String) throws -> Value {
        guard Self.allowed[name] != nil else {
            throw fail("refused global '\(name)' (a state dict holds only OrderedDict, _rebuild_tensor_v2 and float storages)")
        }
        return .global(name)
    }

    /// `('storage', torch.XStorage, key, location, numel)`.
    func persistent(_ pid: Value) throws -> Value {
        guard case let .tuple(t) = pid, t.count == 5, case .string("storage") = t[0], case let .global(g) = t[1],
              let dt = Self.allowed[g], let dtype = dt, case let .string(key) = t[2], case let .int(numel) = t[4], numel >= 0
        else { throw fail("refused persistent id (expected ('storage', a float storage, key, location, numel))") }
        return .storage(Storage(key: key, dtype: dtype, numel: numel))
    }

    func reduce(_ f: Value, _ args: Value) throws -> Value {
        guard case let .global(g) = f, case let .tuple(a) = args else { throw fail("refused REDUCE of a non-global") }
        switch g {
        case "collections.OrderedDict":
            guard a.isEmpty else { throw fail("refused OrderedDict with arguments") }
            return .dict(DictBox())
        case "torch._utils._rebuild_tensor_v2":
            guard a.count == 6 || a.count == 7, case let .storage(s) = a[0], case let .int(off) = a[1],
                  case let .tuple(sz) = a[2], case let .tuple(st) = a[3], sz.count == st.count, sz.count <= 16 else {
                throw fail("refused _rebuild_tensor_v2 arguments (expected storage, offset, size, stride, ...)")
            }
            var size: [Int] = [], stride: [Int] = []
            for (x, y) in zip(sz, st) {
                guard case let .int(i) = x, case let .int(j) = y, i >= 0, j >= 0 else { throw fail("tensor size/stride is not non-negative integers") }
                size.append(i); stride.append(j)
            }
            guard off >= 0 else { throw fail("tensor storage offset \(off) is negative") }
            return .tensor(TensorRef(storage: s, offset: off, size: size, stride: stride))
        default:
            throw fail("refused call of '\(g)' (only OrderedDict() and _rebuild_tensor_v2 are built)")
        }
    }
}
