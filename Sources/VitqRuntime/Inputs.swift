import Foundation
import VitqData
import VitqModels

/// Opening models and datasets from command-line paths, shared by every subcommand.
public enum Inputs {
    /// The dataset at `path`: a directory is an ImageFolder, a `.npy` is uint8 NHWC images, a
    /// `.bin` is a CIFAR-10 binary batch (labels inside).
    /// With `classes` (the model head's width), labels outside 0…(classes − 1) are refused here,
    /// before any calibration or evaluation, naming the labels file, image and value.
    public static func dataset(path: String, labels: String?, classIndex: String?, preprocess: PreprocessConfig,
                               classes: Int? = nil) throws -> ImageDataset {
        let ds = try open(path: path, labels: labels, classIndex: classIndex, preprocess: preprocess)
        if let classes { try ds.checkLabels(classes: classes) }
        return ds
    }

    static func open(path: String, labels: String?, classIndex: String?, preprocess: PreprocessConfig) throws -> ImageDataset {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw DataError.badDataset(path: path, detail: "no such file or directory")
        }
        if isDir.boolValue {
            if labels != nil { throw DataError.badDataset(path: path, detail: "--labels is for .npy images; an ImageFolder takes its labels from folder names") }
            return try ImageFolderDataset(root: path, classIndex: try classIndex.map { try ClassIndex.load(path: $0) },
                                          classIndexPath: classIndex, preprocess: preprocess)
        }
        if path.hasSuffix(".bin") {
            if labels != nil { throw DataError.badDataset(path: path, detail: "--labels is for .npy images; a CIFAR binary batch holds its labels") }
            if classIndex != nil { throw DataError.badDataset(path: path, detail: "--class-index is for ImageFolder directories") }
            try RegularFile.check(path) { DataError.badDataset(path: $0, detail: $1) }
            return try CifarBinaryDataset(path: path, preprocess: preprocess)
        }
        guard path.hasSuffix(".npy") else {
            throw DataError.badDataset(path: path, detail: "expected an ImageFolder directory, a uint8 NHWC .npy file or a CIFAR-10 binary batch (.bin)")
        }
        if classIndex != nil { throw DataError.badDataset(path: path, detail: "--class-index is for ImageFolder directories") }
        // A FIFO or device would block the .npy reader's open(): refuse anything but a regular file.
        for p in [path] + (labels.map { [$0] } ?? []) {
            try RegularFile.check(p) { DataError.badDataset(path: $0, detail: $1) }
        }
        return try NpyImageDataset(images: path, labels: labels, preprocess: preprocess)
    }

    /// The index range `offset ..< offset+limit` of a dataset of `count` images, checked (a
    /// limit past the end is clamped, without overflow). The messages name `offsetFlag` and `limitFlag`.
    public static func range(count: Int, offset: Int, limit: Int?, name: String,
                             offsetFlag: String = "--offset", limitFlag: String = "--limit") throws -> Range<Int> {
        guard offset >= 0, offset < count else { throw DataError.badDataset(path: name, detail: "\(offsetFlag) \(offset) is outside the \(count) images") }
        let hi = limit.map { $0 >= count - offset ? count : offset + $0 } ?? count
        guard hi > offset else { throw DataError.badDataset(path: name, detail: "\(limitFlag) must be positive") }
        return offset..<hi
    }
}
