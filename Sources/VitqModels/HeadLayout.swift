/// Moves per-head attention context between the token-major [B, T, H·hd] layout of the
/// residual stream and the head-major [B, H, T, hd] layout of the taps.
enum HeadLayout {
    static func toHeadMajor(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, batch b: Int, tokens t: Int, heads: Int, headDim hd: Int) {
        for bi in 0..<b { for h in 0..<heads { for ti in 0..<t {
            (dst + ((bi * heads + h) * t + ti) * hd).update(from: src + (bi * t + ti) * heads * hd + h * hd, count: hd)
        } } }
    }

    static func fromHeadMajor(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, batch b: Int, tokens t: Int, heads: Int, headDim hd: Int) {
        for bi in 0..<b { for h in 0..<heads { for ti in 0..<t {
            (dst + (bi * t + ti) * heads * hd + h * hd).update(from: src + ((bi * heads + h) * t + ti) * hd, count: hd)
        } } }
    }
}
