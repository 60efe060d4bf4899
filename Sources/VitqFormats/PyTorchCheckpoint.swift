import Foundation

/// Reads a `torch.save` zip of a state dict into an in-memory ``TensorFile`` (format `.pytorch`):
/// the strict zip reader, the strict unpickler, then every tensor materialised contiguous after
/// its storage offset and strided extent are checked against the storage.
enum PyTorchCheckpoint {
    static func read(path: String) throws -> TensorFile {
        let file = try MappedFile(path: path)
        let archive = try StoredZip(path: path, file: file)
        let f = archive.folder
        if let bo = try archive.data("byteorder") {
            guard bo.elementsEqual("little".utf8) else {
                throw FormatError.badCheckpoint(path: path, object: "\(f)/byteorder", detail: "byte order '\(String(decoding: bo.prefix(16), as: UTF8.self))' is not 'little'")
            }
        }
        guard let pkl = try archive.data("data.pkl") else { throw FormatError.badCheckpoint(path: path, object: "\(f)/data.pkl", detail: "missing (not a torch.save archive)") }
        let vm = StateDictUnpickler(path: path, object: "\(f)/data.pkl")
        var top = try vm.run(pkl)
        guard case let .dict(d) = top else { throw vm.fail("the pickled object is not a dict") }
        if !d.items.contains(where: { if case .tensor = $0.1 { return true }; return false }) {
            let wrapped = d.items.filter { if case .string(let k) = $0.0, k == "state_dict" || k == "model", case .dict = $0.1 { return true }; return false }
            guard wrapped.count == 1 else { throw vm.fail("the dict holds no tensors and no single 'state_dict'/'model' dict") }
            top = wrapped[0].1
        }
        guard case let .dict(sd) = top else { throw vm.fail("not a dict") }
        var entries: [TensorFile.Entry] = []
        var budget = 4 * file.bytes.count + (1 << 20)
        var storages: [String: UnsafeRawBufferPointer] = [:]
        for (k, v) in sd.items {
            guard case let .string(name) = k else { throw vm.fail("a key is not a string") }
            guard case let .tensor(t) = v else { throw vm.fail("'\(name)' is not a tensor") }
            let s = t.storage
            let obj = "\(f)/data/\(s.key)"
            func bad(_ d: String) -> FormatError { .badTensor(path: path, key: name, detail: d) }
            let raw: UnsafeRawBufferPointer
            if let r = storages[s.key] { raw = r } else {
                guard !s.key.contains("/"), let r = try archive.data("data/\(s.key)") else {
                    throw FormatError.badCheckpoint(path: path, object: obj, detail: "storage referenced by '\(name)' is missing")
                }
                guard let need = CheckedSize.product([s.numel, s.dtype.size]), need == r.count else {
                    throw FormatError.badCheckpoint(path: path, object: obj, detail: "\(r.count) bytes, but \(s.numel) × \(s.dtype.rawValue) announced")
                }
                storages[s.key] = r; raw = r
            }
            guard let count = CheckedSize.product(t.size), let bytes = CheckedSize.product([count, s.dtype.size]) else { throw bad("shape \(t.size) overflows") }
            budget -= bytes
            guard budget >= 0 else { throw bad("materialising the tensors would need more than 4× the file's size") }
            if count > 0 {
                var extent = t.offset
                for (n, st) in zip(t.size, t.stride) {
                    guard let e = CheckedSize.product([n - 1, st]), let sum = CheckedSize.sum([extent, e]) else { throw bad("strided extent overflows") }
                    extent = sum
                }
                guard extent < s.numel else {
                    throw bad("offset \(t.offset), size \(t.size), stride \(t.stride) reach element \(extent) of a \(s.numel)-element storage '\(s.key)'")
                }
            }
            entries.append(.init(name: name, dtype: s.dtype, shape: t.size, bytes: gather(raw, t, count)))
        }
        return try TensorFile(path: path, format: .pytorch, byteCount: file.bytes.count, entries: entries)
    }

    /// The view's elements in row-major order (bounds checked by the caller).
    static func gather(_ raw: UnsafeRawBufferPointer, _ t: StateDictUnpickler.TensorRef, _ count: Int) -> Data {
        let es = t.storage.dtype.size
        var out = Data(count: count * es)
        guard count > 0 else { return out }
        var contiguous = true, expect = 1
        for (n, st) in zip(t.size, t.stride).reversed() where n != 1 { if st != expect { contiguous = false }; expect *= n }
        out.withUnsafeMutableBytes { dst in
            if contiguous {
                dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[(t.offset * es)..<((t.offset + count) * es)]))
                return
            }
            var idx = [Int](repeating: 0, count: t.size.count)
            for i in 0..<count {
                var e = t.offset
                for d in 0..<idx.count { e += idx[d] * t.stride[d] }
                UnsafeMutableRawBufferPointer(rebasing: dst[(i * es)..<((i + 1) * es)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[(e * es)..<((e + 1) * es)]))
                var d = idx.count - 1
                while d >= 0 { idx[d] += 1; if idx[d] < t.size[d] { break }; idx[d] = 0; d -= 1 }
            }
        }
        return out
    }
}
