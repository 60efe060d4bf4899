import Foundation
import VitqData
import VitqModels

/// Opening models and datasets from command-line paths, shared by every subcommand.
public enum Inputs {
    /// The dataset at `path`: a directory is an ImageFolder, a `.npy` is uint8 NHWC images.
    public static func dataset(path: String, labels: String?, classIndex: String?, preprocess: PreprocessConfig) throws -> ImageDataset {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw DataError.badDataset(path: path, detail: "no such file or directory")
        }
        if isDir.boolValue {
            if labels != nil { throw DataError.badDataset(path: path, detail: "--labels is for .npy images; an ImageFolder takes its labels from folder names") }
            return try ImageFolderDataset(root: path, classIndex: try classIndex.map { try ClassIndex.load(path: $0) }, preprocess: preprocess)
        }
        guard path.hasSuffix(".npy") else {
            throw DataError.badDataset(path: path, detail: "expected an ImageFolder directory or a uint8 NHWC .npy file")
        }
        if classIndex != nil { throw DataError.badDataset(path: path, detail: "--class-index is for ImageFolder directories") }
        return try NpyImageDataset(images: path, labels: labels, preprocess: preprocess)
    }

    /// The index range `offset ..< offset+limit` of a dataset of `count` images, checked.
    public static func range(count: Int, offset: Int, limit: Int?, name: String) throws -> Range<Int> {
        guard offset >= 0, offset < count else { throw DataError.badDataset(path: name, detail: "--offset \(offset) is outside the \(count) images") }
        let hi = limit.map { min(count, offset + $0) } ?? count
        guard hi > offset else { throw DataError.badDataset(path: name, detail: "--limit must be positive") }
        return offset..<hi
    }
}
