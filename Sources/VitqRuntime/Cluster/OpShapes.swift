import VitqDistributed
import VitqModels
import VitqQuant

extension OpShape {
    /// The result shape of each of `ops` on `model`, which every RESULT is checked against:
    /// 2 × heads ranges for `<block>.matmul1/2`, otherwise 1 range and the linear op's output
    /// features as output-error channels. Throws for an op the model does not have.
    static func of(_ ops: [String], model: any SearchableModel) throws -> [String: OpShape] {
        var shapes: [String: OpShape] = [:]
        let linears = Dictionary(model.linearOps.map { ($0.name, $0.op) }, uniquingKeysWith: { a, _ in a })
        for op in ops {
            if op.hasSuffix(".matmul1") || op.hasSuffix(".matmul2") {
                guard let geo = model.attentionGeometry(String(op.dropLast(".matmul1".count))) else {
                    throw ClusterError.job("op \(op): the model has no such attention block")
                }
                shapes[op] = OpShape(ranges: 2 * geo.heads, channels: nil)
            } else {
                guard let lin = linears[op] as? Linear else { throw ClusterError.job("op \(op): the model has no such linear op") }
                shapes[op] = OpShape(ranges: 1, channels: lin.outFeatures, weights: lin.outFeatures * lin.inFeatures)
            }
        }
        return shapes
    }

    /// The operand groups of op `op` (its `ranges` count; 0 for an op the model does not have).
    static func groups(_ op: String, model: any SearchableModel) -> Int {
        (try? of([op], model: model))?[op]?.ranges ?? 0
    }
}
