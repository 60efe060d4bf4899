import Foundation
import VitqFormats
import VitqModels
import VitqTensor

extension QModelFile {
    /// Writes `net` to `path` atomically; the same network and provenance always give the same
    /// bytes. The float model's own tensors (``SearchableModel/floatTensors``) under their
    /// checkpoint keys, each linear op and attention block's entries, the spec as the family
    /// encodes it in `model`, and the family's `architecture` tag when it has one.
    public static func write(_ net: QuantizedNetwork, provenance: QModelProvenance, to path: String) throws {
        let m = net.base
        var w = SafeTensorsWriter()
        for (key, t) in m.floatTensors { w.add(key, t) }
        var ops: [String: Any] = [:]
        for (name, op) in m.linearOps {
            addLinear(&w, name, shape: m.storedWeightShape(name, out: op.outFeatures, in: op.inFeatures), net.linear[name]!, ops: &ops)
        }
        for (block, a) in net.attention { addAttention(&w, block, a, ops: &ops) }
        let tag = net.family.architectureTag.map { ["architecture": $0] } ?? [:]
        w.metadata = try metadata(provenance, model: try m.encodedSpec(), ops: ops, extra: tag)
        try w.write(to: path)
    }

    /// A linear op's weight (I8 when quantized, U8 two per byte at 4 bits or fewer, F32 when float), its bias and its `ops` entry.
    static func addLinear(_ w: inout SafeTensorsWriter, _ name: String, shape: [Int], _ slot: LinearSlot, ops: inout [String: Any]) {
        switch slot {
        case let .float(l):
            w.add("\(name).weight", shape: shape, floats: l.weight.array)
            if let b = l.bias { w.add("\(name).bias", b) }
        case let .quantized(qw, input):
            if PackedNibbles.isPacked(bits: qw.quant.scheme.bits) {
                let packed = PackedNibbles.pack(qw.values, rows: qw.outFeatures, inFeatures: qw.inFeatures)
                w.add("\(name).weight", dtype: .u8, shape: [qw.outFeatures, PackedNibbles.rowBytes(qw.inFeatures)], bytes: Data(packed))
            } else {
                w.add("\(name).weight", dtype: .i8, shape: shape, bytes: qw.values.withUnsafeBufferPointer { Data(buffer: $0) })
            }
            if let b = qw.bias { w.add("\(name).bias", b) }
            ops[name] = [
                "kind": "linear",
                "weight": addQuant(&w, "\(name).weight", qw.quant),
                "input": addOperand(&w, "\(name).input", input),
            ] as [String: Any]
        }
    }

    /// The `ops` entries `<block>.matmul_qk` and `<block>.matmul_pv` and their quantizer tensors.
    static func addAttention(_ w: inout SafeTensorsWriter, _ p: String, _ a: AttentionQuant, ops: inout [String: Any]) {
        ops["\(p).matmul_qk"] = ["kind": "matmul", "a": addQuant(&w, "\(p).matmul_qk.a", a.q), "b": addQuant(&w, "\(p).matmul_qk.b", a.k)]
        ops["\(p).matmul_pv"] = ["kind": "matmul", "a": addOperand(&w, "\(p).matmul_pv.a", a.probs), "b": addQuant(&w, "\(p).matmul_pv.b", a.v)]
    }

    /// The metadata every quantized file has; `extra` adds keys (a Swin file's `architecture`).
    static func metadata(_ provenance: QModelProvenance, model: String, ops: [String: Any], extra: [String: String] = [:]) throws -> [String: String] {
        var m = [
            "format": formatName,
            "format_version": String(version),
            "source_sha256": provenance.sourceSHA256,
            "source_name": provenance.sourceName,
            "recipe": provenance.recipeJSON,
            "model": model,
            "ops": String(decoding: try JSONSerialization.data(withJSONObject: ops, options: [.sortedKeys]), as: UTF8.self),
        ]
        if let p = provenance.partialQuantizationJSON { m["partial_quantization"] = p }
        if let p = provenance.mixedPrecisionJSON { m["mixed_precision"] = p }
        for (k, v) in extra { m[k] = v }
        return m
    }
}
