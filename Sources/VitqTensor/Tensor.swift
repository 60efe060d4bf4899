import CVitqKernels
import Foundation

/// A dense, row-major float tensor with 64-byte aligned storage that it owns.
///
/// `Tensor` is a reference type so that large activations are never copied by accident;
/// use ``copy()`` for a deep copy. Element access goes through ``data`` (a raw pointer) on
/// hot paths and through the subscript in tests.
public final class Tensor: @unchecked Sendable {
    /// The extent of each dimension, outermost first.
    public let shape: [Int]
    /// The number of elements (the product of ``shape``).
    public let count: Int
    /// The first element; `count` contiguous floats follow.
    public let data: UnsafeMutablePointer<Float>

    /// glibc serves blocks above its mmap threshold (at most 32 MiB) with mmap and unmaps them
    /// on free, so every large activation would cost fresh page faults. Serving them from the
    /// heap, and keeping freed heap memory, lets the next forward pass reuse the pages.
    static let reuseLargeBlocks: Void = vitq_reuse_large_blocks()

    /// A zero-filled tensor of the given shape.
    public init(zeros shape: [Int]) {
        _ = Self.reuseLargeBlocks
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in \(shape)")
        self.shape = shape
        self.count = shape.reduce(1, *)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        raw.initializeMemory(as: Float.self, repeating: 0, count: max(count, 1))
        self.data = raw.assumingMemoryBound(to: Float.self)
    }

    /// A tensor holding a copy of `values`, which must have `shape`'s element count.
    public convenience init(shape: [Int], values: [Float]) {
        self.init(zeros: shape)
        precondition(values.count == count, "\(values.count) values for shape \(shape)")
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    deinit { UnsafeMutableRawPointer(data).deallocate() }

    /// The elements as a Swift array (a copy).
    public var array: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    /// A copy of entries `range` of the outermost dimension (e.g. images of a batch).
    public func slice(_ range: Range<Int>) -> Tensor {
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[0], "slice \(range) of \(shape[0])")
        let per = shape.dropFirst().reduce(1, *)
        let t = Tensor(zeros: [range.count] + shape.dropFirst())
        t.data.update(from: data + range.lowerBound * per, count: range.count * per)
        return t
    }

    /// A deep copy.
    public func copy() -> Tensor {
        let t = Tensor(zeros: shape)
        t.data.update(from: data, count: count)
        return t
    }

    /// Element at a flat index.
    public subscript(i: Int) -> Float {
        get { data[i] }
        set { data[i] = newValue }
    }
}

/// Comparison helpers used by tests and golden checks.
public enum TensorCompare {
    /// max|a−b| / max|b|: the error relative to the reference's largest magnitude.
    public static func maxRelativeError(_ a: UnsafeBufferPointer<Float>, reference b: UnsafeBufferPointer<Float>) -> Double {
        precondition(a.count == b.count, "size mismatch \(a.count) vs \(b.count)")
        var maxDiff = 0.0, maxRef = 0.0
        for i in 0..<a.count {
            maxDiff = max(maxDiff, Double(abs(a[i] - b[i])))
            maxRef = max(maxRef, Double(abs(b[i])))
        }
        return maxRef == 0 ? maxDiff : maxDiff / maxRef
    }
}
