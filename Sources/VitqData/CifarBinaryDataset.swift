import Foundation
import VitqFormats

/// Images in the CIFAR-10 binary batch layout (`data_batch_N.bin`, `test_batch.bin`): records of
/// one label byte then 32×32 red, green and blue planes (3,073 bytes each). Labels come with the
/// images; images at the model's input size are only normalised, others get the full transform.
public final class CifarBinaryDataset: ImageDataset, @unchecked Sendable {
    /// The side of a CIFAR image.
    public static let side = 32
    /// Bytes per record: the label byte and three 32×32 planes.
    public static let recordBytes = 1 + 3 * side * side

    public let name: String
    public let count: Int
    public let labels: [Int]?
    public var labelsSource: String { name }
    let file: MappedFile
    let preprocessor: Preprocessor

    /// The batch at `path`: a non-empty whole number of records, or an error naming the file.
    public init(path: String, preprocess: PreprocessConfig) throws {
        file = try MappedFile(path: path)
        let size = file.bytes.count
        guard size > 0, size % Self.recordBytes == 0 else {
            throw DataError.badDataset(path: path, detail: "\(size) bytes is not a whole number of CIFAR records (\(Self.recordBytes) bytes each: a label byte and 32×32 R, G and B planes)")
        }
        name = path
        count = size / Self.recordBytes
        let bytes = file.bytes
        labels = (0..<count).map { Int(bytes[$0 * Self.recordBytes]) }
        preprocessor = Preprocessor(preprocess)
    }

    public func imageName(_ index: Int) -> String { "record \(index) of \(name)" }

    /// Image `index` as interleaved RGB (HWC), from the record's planes.
    public func image(_ index: Int) -> RGBImage {
        let s = Self.side, plane = s * s
        let base = index * Self.recordBytes + 1
        var pixels = [UInt8](repeating: 0, count: plane * 3)
        let bytes = file.bytes
        for c in 0..<3 {
            for i in 0..<plane { pixels[i * 3 + c] = bytes[base + c * plane + i] }
        }
        return RGBImage(width: s, height: s, pixels: pixels)
    }

    public func load(_ index: Int, into dst: UnsafeMutablePointer<Float>) throws {
        let img = image(index)
        if preprocessor.config.inputSize == Self.side {
            img.pixels.withUnsafeBufferPointer { preprocessor.normalize($0.baseAddress!, into: dst) }
        } else {
            try preprocessor.process(img, path: imageName(index), into: dst)
        }
    }
}
