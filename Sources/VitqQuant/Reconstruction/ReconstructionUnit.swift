import VitqTensor

/// What ``Reconstructor`` trains: a block (or one linear op) with a quantized forward over up
/// to ``capacity`` images held in ``input``, its output in ``output``, and a backward from
/// ``outputGradient`` to the rounding and step gradients.
protocol ReconstructionUnit: AnyObject {
    /// The most images a step holds.
    var capacity: Int { get }
    /// Rows per image of the input and the output (tokens, patches, or 1).
    var rowsPerImage: Int { get }
    var inputWidth: Int { get }
    var outputWidth: Int { get }
    var input: Tensor { get }
    var output: Tensor { get }
    var outputGradient: Tensor { get }
    /// The linear ops, with their roundings.
    var linears: [ReconstructedLinear] { get }
    /// The quantizers whose steps are learned.
    var quantizers: [LearnedQuantizer] { get }
    /// QDrop's masks for one step of `rows` rows.
    func drawDropMasks(probability: Float, rows: Int, random: inout SeededRandom) -> [String: [UInt8]]
    func forward(images: Int, masks: [String: [UInt8]])
    /// The weight gradients into each linear op, and dL/d(log Δ) by quantizer.
    func backward(images: Int, masks: [String: [UInt8]]) -> [ObjectIdentifier: [Double]]
}
