import ArgumentParser
import VitqData
import VitqModels
import VitqRuntime

/// Where images (and labels) come from; shared by every command that reads a dataset.
struct DatasetOptions: ParsableArguments {
    @Option(help: "Images: a uint8 NHWC .npy file, a CIFAR-10 binary batch (.bin), or an ImageFolder directory.")
    var data: String
    @Option(help: "int64 .npy labels for .npy images.")
    var labels: String?
    @Option(name: .customLong("class-index"), help: "wnid list, or index<TAB>wnid<TAB>name lines, mapping ImageFolder folders to class indices.")
    var classIndex: String?

    /// The dataset, preprocessed as `preprocess` says; with `classes` (the model head's width),
    /// labels outside 0…(classes − 1) are refused.
    func open(_ preprocess: PreprocessConfig, classes: Int? = nil) throws -> ImageDataset {
        try Inputs.dataset(path: data, labels: labels, classIndex: classIndex, preprocess: preprocess, classes: classes)
    }
}
