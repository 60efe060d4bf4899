import Foundation
import VitqFormats
import VitqModels
import VitqTensor

extension QModelFile {
    /// Whether `file` is a vitq quantized model (by its `format` metadata).
    public static func isQuantized(_ file: TensorFile) -> Bool { file.metadata["format"] == formatName }

    /// Reads and validates a quantized file: format and version, the family (``ModelFamilies``,
    /// by the `architecture` metadata) and its model spec, every op's quantizer entry and scale
    /// tensors (shape from the granularity, finite and positive, zero points on the grid), and no
    /// tensor left unused. The model is built by its family's loader, each linear op read as a
    /// ``LinearSlot`` (a float stand-in in the model, replaced by ``QuantizedNetwork/makeModel(_:)``).
    public static func read(_ file: TensorFile) throws -> (model: QuantizedNetwork, provenance: QModelProvenance) {
        let path = file.path
        let meta = file.metadata
        guard meta["format"] == formatName else { throw QModelError(path, "not a vitq quantized model (metadata 'format' is \(meta["format"].map { "'\($0)'" } ?? "missing"))") }
        guard let v = meta["format_version"] else { throw QModelError(path, "metadata 'format_version' is missing") }
        guard v == String(version) else { throw QModelError(path, "unsupported format_version '\(v)' (this vitq reads version \(version))") }
        for key in ["source_sha256", "source_name", "recipe", "model", "ops"] where meta[key] == nil {
            throw QModelError(path, "metadata '\(key)' is missing")
        }
        guard let ops = (try? JSONSerialization.jsonObject(with: Data(meta["ops"]!.utf8))) as? [String: Any] else {
            throw QModelError(path, "metadata 'ops' is not a JSON object")
        }
        let prov = QModelProvenance(sourceSHA256: meta["source_sha256"]!, sourceName: meta["source_name"]!, recipeJSON: meta["recipe"]!,
                                    partialQuantizationJSON: meta["partial_quantization"], mixedPrecisionJSON: meta["mixed_precision"])
        guard let family = ModelFamilies.tagged(meta["architecture"]) else {
            throw QModelError(path, "metadata 'architecture': unknown architecture '\(meta["architecture"] ?? "")' (\(ModelFamilies.names))")
        }
        let blueprint: ModelBlueprint
        do { blueprint = try family.blueprint(spec: meta["model"]!, source: "metadata 'model'", file: file) } catch {
            throw QModelError(path, "\(error)")
        }
        let known = Set(blueprint.linearOps + blueprint.attentionBlocks.flatMap { ["\($0.name).matmul_qk", "\($0.name).matmul_pv"] })
        if let unknown = ops.keys.sorted().first(where: { !known.contains($0) }) {
            throw QModelError(path, "ops: unknown op '\(unknown)' for this architecture")
        }
        let l = StrictTensorLoader(file)
        var slots: [String: LinearSlot] = [:]
        let base = try blueprint.build(l) { layout in
            let slot = try readLinear(layout, ops: ops, l, path)
            slots[layout.name] = slot
            return slot.floatStandIn
        }
        var attention: [String: AttentionQuant] = [:]
        for (block, heads) in blueprint.attentionBlocks {
            attention[block] = try readAttention(block, heads: heads, ops: ops, l, path)
        }
        try l.finish()
        return (QuantizedNetwork(base: base, linear: slots, attention: attention), prov)
    }
}
