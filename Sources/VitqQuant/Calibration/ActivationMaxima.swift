import Foundation
import VitqTensor

/// Running max |x| of the taps ``MinMaxCalibrator`` needs, for any model family: one value per linear-op input (`….input`), per head for Q, K and V
/// (from a qkv output laid out (3, heads, head_dim)) and for the probabilities (`….attn.softmax`,
/// [batch, heads, t, t]), stored as `….attn.q|k|v|probs`.
final class ActivationMaxima: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [String: [Float]] = [:]

    /// The taps it records.
    static func wants(_ name: String) -> Bool {
        name.hasSuffix(".input") || name.hasSuffix(".attn.qkv") || name.hasSuffix(".attn.softmax")
    }

    /// Records a tap of a block with `heads` heads and `dim` channels.
    func record(_ name: String, _ v: UnsafeBufferPointer<Float>, shape: [Int], heads: Int, dim: Int) {
        let p = v.baseAddress!
        if name.hasSuffix(".attn.qkv") {
            let hd = dim / heads, rows = v.count / (3 * dim)
            var m = [Float](repeating: 0, count: 3 * heads)
            for r in 0..<rows { for part in 0..<3 { for h in 0..<heads {
                m[part * heads + h] = max(m[part * heads + h], Ops.maxAbs(p + r * 3 * dim + part * dim + h * hd, cols: hd))
            } } }
            let base = String(name.dropLast(4))
            merge("\(base).q", Array(m[0..<heads])); merge("\(base).k", Array(m[heads..<2 * heads])); merge("\(base).v", Array(m[(2 * heads)...]))
        } else if name.hasSuffix(".attn.softmax") {
            let per = shape[2] * shape[3]
            var m = [Float](repeating: 0, count: heads)
            for i in 0..<(shape[0] * heads) { m[i % heads] = max(m[i % heads], Ops.maxAbs(p + i * per, cols: per)) }
            merge("\(name.dropLast(8)).probs", m)
        } else {
            merge(name, [Ops.maxAbs(p, cols: v.count)])
        }
    }

    private func merge(_ key: String, _ m: [Float]) {
        lock.withLock {
            if let old = values[key] { values[key] = zip(old, m).map { max($0, $1) } } else { values[key] = m }
        }
    }

    /// The maxima under `key` (nil if never seen).
    subscript(key: String) -> [Float]? { lock.withLock { values[key] } }
}
