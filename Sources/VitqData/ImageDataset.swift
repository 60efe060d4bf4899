import Foundation
import VitqFormats
import VitqTensor

/// A labelled (or unlabelled) image collection that yields preprocessed images.
public protocol ImageDataset: Sendable {
    /// Where the images come from (for messages).
    var name: String { get }
    var count: Int { get }
    /// Class index per image, when known.
    var labels: [Int]? { get }
    /// Where the labels come from (a labels file, a class index or the folder), for messages.
    var labelsSource: String { get }
    /// How messages name image `index` (its file, or its row).
    func imageName(_ index: Int) -> String
    /// Writes image `index`, preprocessed, as CHW floats at `dst` (3 × size × size).
    func load(_ index: Int, into dst: UnsafeMutablePointer<Float>) throws
}

extension ImageDataset {
    /// Refuses labels outside 0…(classes − 1) with one line naming `labelsSource`, the first bad
    /// image index and its label (a model head with `classes` outputs cannot score them).
    public func checkLabels(classes: Int) throws {
        guard let labels else { return }
        if let i = labels.firstIndex(where: { $0 < 0 || $0 >= classes }) {
            throw DataError.badDataset(path: labelsSource, detail: "label \(labels[i]) of image \(i) (\(imageName(i))) is outside 0…\(classes - 1): the model has \(classes) classes")
        }
    }

    /// Image `i` is row `i` of the dataset, unless the dataset names its files.
    public func imageName(_ i: Int) -> String { "row \(i) of \(name)" }

    /// Images `indices`, preprocessed, as a [B, 3, size, size] tensor (decoded in parallel).
    public func batch(_ indices: [Int], size: Int) throws -> Tensor {
        let t = Tensor(zeros: [indices.count, 3, size, size])
        let plane = 3 * size * size
        let errors = ErrorSlot()
        Parallel.forEach(indices.count) { i in
            do { try load(indices[i], into: t.data + i * plane) } catch { errors.set(error) }
        }
        if let e = errors.first { throw e }
        return t
    }
}

/// Keeps the first error thrown inside a parallel loop.
final class ErrorSlot: @unchecked Sendable {
    private let lock = NSLock()
    private var error: Error?
    func set(_ e: Error) { lock.withLock { if error == nil { error = e } } }
    var first: Error? { lock.withLock { error } }
}

/// Images in a uint8 NHWC `.npy` array, with optional int64 labels in a second `.npy`.
/// Images already at the model's input size are only normalised; others get the full transform.
public final class NpyImageDataset: ImageDataset, @unchecked Sendable {
    public let name: String
    public let count: Int
    public let labels: [Int]?
    public let labelsSource: String
    let images: NpyArray
    let preprocessor: Preprocessor

    public init(images path: String, labels labelsPath: String?, preprocess: PreprocessConfig) throws {
        images = try NpyArray(path: path, expect: .uint8)
        guard images.shape.count == 4, images.shape[3] == 3 else {
            throw DataError.badDataset(path: path, detail: "expected uint8 images [N, H, W, 3], got shape \(images.shape)")
        }
        guard images.shape[1] > 0, images.shape[2] > 0 else {
            throw DataError.badDataset(path: path, detail: "images of shape \(images.shape) have no pixels")
        }
        name = path
        labelsSource = labelsPath ?? path
        count = images.shape[0]
        preprocessor = Preprocessor(preprocess)
        if let lp = labelsPath {
            let l = try NpyArray(path: lp, expect: .int64)
            guard l.shape == [count] else {
                throw DataError.badDataset(path: lp, detail: "labels have shape \(l.shape), expected [\(count)] to match \(path)")
            }
            labels = try l.int64s()
        } else {
            labels = nil
        }
    }

    public func load(_ index: Int, into dst: UnsafeMutablePointer<Float>) throws {
        let h = images.shape[1], w = images.shape[2], size = preprocessor.config.inputSize
        let src = images.bytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + index * h * w * 3
        if h == size && w == size {
            preprocessor.normalize(src, into: dst)
        } else {
            try preprocessor.process(RGBImage(width: w, height: h, pixels: Array(UnsafeBufferPointer(start: src, count: h * w * 3))),
                                     path: imageName(index), into: dst)
        }
    }
}

/// An ImageFolder tree: one subfolder per class, named by its wnid, holding JPEG/PNG files
/// (recursively; `ImageFolderScan` says which entries are images and what is refused).
///
/// Labels are the global class indices from a class-index file when one is given (so a folder
/// with a subset of classes keeps ImageNet's numbering), else the sorted folder order.
public final class ImageFolderDataset: ImageDataset, @unchecked Sendable {
    public let name: String
    public let files: [String]
    public let labels: [Int]?
    public let labelsSource: String
    public var count: Int { files.count }
    let preprocessor: Preprocessor

    /// The tree at `root`; `classIndex` (read from `classIndexPath`, named in label errors) maps
    /// folder names to class indices.
    public init(root: String, classIndex: [String: Int]?, classIndexPath: String? = nil, preprocess: PreprocessConfig) throws {
        var walk = try ImageFolderScan.Walk(root: root)
        let classes = try walk.classes(root: root)
        guard !classes.isEmpty else { throw DataError.badDataset(path: root, detail: "no class subfolders") }
        var files: [String] = [], labels: [Int] = []
        for (i, cls) in classes.enumerated() {
            let label: Int
            if let ci = classIndex {
                guard let l = ci[cls] else { throw DataError.badDataset(path: root + "/" + cls, detail: "folder name '\(cls)' is not in the class index") }
                label = l
            } else {
                label = i
            }
            let found = try walk.images(in: root + "/" + cls)
            guard !found.isEmpty else {
                throw DataError.badDataset(path: root + "/" + cls, detail: "no image files in this class folder (extensions: \(ImageFolderScan.imageExtensions.joined(separator: " ")))")
            }
            for p in found {
                try ImageFolderScan.checkCandidate(p)
                files.append(p)
                labels.append(label)
            }
        }
        name = root
        self.files = files
        self.labels = labels
        labelsSource = classIndex == nil ? root : (classIndexPath ?? root)
        preprocessor = Preprocessor(preprocess)
    }

    public func imageName(_ index: Int) -> String { files[index] }

    public func load(_ index: Int, into dst: UnsafeMutablePointer<Float>) throws {
        try preprocessor.process(try ImageDecoder.decode(path: files[index]), path: files[index], into: dst)
    }
}

/// Reads a class index: one wnid per line (index = line number), or `index<TAB>wnid<TAB>name`
/// lines (an `index\twnid\tname` header line is skipped).
public enum ClassIndex {
    /// The largest class index file read (ImageNet-21k's is about 1 MB).
    static let maxBytes = 64 << 20

    public static func load(path: String) throws -> [String: Int] {
        let bytes = try RegularFile.read(path, maxBytes: maxBytes) { DataError.badClassIndex(path: $0, detail: $1) }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw DataError.badClassIndex(path: path, detail: "not UTF-8 text")
        }
        var map: [String: Int] = [:]
        var next = 0
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty { continue }
            let cols = raw.split(separator: "\t", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            if cols.count >= 2 {
                if n == 0 && cols[0] == "index" { continue }
                guard let idx = Int(cols[0]) else { throw DataError.badClassIndex(path: path, detail: "line \(n + 1): '\(cols[0])' is not an index") }
                guard map[cols[1]] == nil else { throw DataError.badClassIndex(path: path, detail: "line \(n + 1): duplicate wnid '\(cols[1])'") }
                map[cols[1]] = idx
            } else {
                guard map[line] == nil else { throw DataError.badClassIndex(path: path, detail: "line \(n + 1): duplicate wnid '\(line)'") }
                map[line] = next
                next += 1
            }
        }
        guard !map.isEmpty else { throw DataError.badClassIndex(path: path, detail: "no classes") }
        return map
    }
}
