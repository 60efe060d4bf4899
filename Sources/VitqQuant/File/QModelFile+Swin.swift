import Foundation
import VitqData
import VitqFormats
import VitqModels
import VitqTensor

/// What a quantized Swin file's `model` metadata holds.
struct SwinSpec: Codable, Equatable {
    var swin: SwinConfig
    var preprocess: PreprocessConfig
}

extension QModelFile {
    /// Writes a Swin network: metadata `architecture: swin`, the timm names for the float
    /// tensors (norms, relative position bias tables) and the same linear and matmul entries as a
    /// ViT file (Docs/QMODEL_FORMAT.md).
    static func writeSwin(_ net: QuantizedSwinNetwork, provenance: QModelProvenance, to path: String) throws {
        let m = net.base, c = net.config
        var w = SafeTensorsWriter()
        addNorm(&w, "patch_embed.norm", m.patchNorm)
        for (s, merge) in m.merges.enumerated() { if let merge { addNorm(&w, "layers.\(s).downsample.norm", merge.norm) } }
        for (s, blocks) in m.stages.enumerated() {
            for (b, blk) in blocks.enumerated() {
                let p = "layers.\(s).blocks.\(b)"
                addNorm(&w, "\(p).norm1", blk.norm1); addNorm(&w, "\(p).norm2", blk.norm2)
                w.add("\(p).attn.relative_position_bias_table", blk.relativePositionBias)
            }
        }
        addNorm(&w, "norm", m.norm)
        var ops: [String: Any] = [:]
        for (name, op) in m.linearOps {
            addLinear(&w, name, shape: c.weightShape(name, out: op.outFeatures, in: op.inFeatures), net.linear[name]!, ops: &ops)
        }
        for (block, a) in net.attention { addAttention(&w, block, a, ops: &ops) }
        w.metadata = try metadata(provenance, model: canonicalJSON(SwinSpec(swin: c, preprocess: m.preprocess)), ops: ops,
                                  extra: ["architecture": "swin"])
        try w.write(to: path)
    }

    static func readSwin(_ file: SafeTensorsFile, ops: [String: Any]) throws -> QuantizedSwinNetwork {
        let path = file.path
        let spec: SwinSpec
        do { spec = try JSONDecoder().decode(SwinSpec.self, from: Data(file.metadata["model"]!.utf8)) } catch {
            throw QModelError(path, "metadata 'model' is not a valid Swin spec: \(error)")
        }
        let c = spec.swin
        do {
            try c.validate(source: "metadata 'model'")
            try c.checkSizes(source: "metadata 'model'", fileBytes: file.byteCount, tensorCount: file.tensors.count)
            try spec.preprocess.validate(source: "metadata 'model'", channels: c.inChans, imageSize: c.imgSize)
        } catch { throw QModelError(path, "\(error)") }
        let blocks = (0..<c.stages).flatMap { s in (0..<c.depths[s]).map { (s, "layers.\(s).blocks.\($0).attn") } }
        let l = StrictTensorLoader(file)
        var slots: [String: LinearSlot] = [:]
        let base = try SwinTransformer(loader: l, config: c, preprocess: spec.preprocess) { name, out, inF in
            let slot = try readLinear(name, out: out, in: inF, shape: c.weightShape(name, out: out, in: inF),
                                      biasOptional: name.hasSuffix("downsample.reduction"), ops: ops, l, path)
            slots[name] = slot
            return slot.floatStandIn
        }
        let known = Set(slots.keys).union(blocks.flatMap { ["\($0.1).matmul_qk", "\($0.1).matmul_pv"] })
        if let unknown = ops.keys.sorted().first(where: { !known.contains($0) }) {
            throw QModelError(path, "ops: unknown op '\(unknown)' for this architecture")
        }
        var attention: [String: AttentionQuant] = [:]
        for (s, block) in blocks {
            attention[block] = try readAttention(block, heads: c.numHeads[s], ops: ops, l, path)
        }
        try l.finish()
        return QuantizedSwinNetwork(base: base, linear: slots, attention: attention)
    }
}
