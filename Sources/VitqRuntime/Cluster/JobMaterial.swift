import Foundation
import VitqData
import VitqDistributed
import VitqFormats
import VitqModels
import VitqQuant
import VitqTensor

/// How the coordinator hands workers the model and the calibration images.
public enum ShipMode: String, Sendable, CaseIterable {
    /// The bytes travel in the JOB message.
    case inline
    /// Workers read the same paths (a shared file system); the sha256 is checked either way.
    case path
}

/// A job and the inline frames it refers to, built by the coordinator.
public struct JobMaterial {
    public var job: Job
    public var blobs: [Data]
    /// Identifies the run in the journal (``RunFingerprint``): every input of the result.
    public var fingerprint: String

    /// The job for calibrating `model` (from `modelPath`) on images `calib` of `dataset`. The
    /// calibration images are preprocessed here, once, into a float32 `.npy`; with `.path`
    /// it is written to `imagesPath` for workers to read.
    public static func make(modelPath: String, model: any SearchableModel, overrides: ModelOverrides, dataset: ImageDataset,
                            calib: Range<Int>, recipe: Recipe, ship: ShipMode, imagesPath: String,
                            heartbeat: Double, liveness: Int) throws -> JobMaterial {
        let size = model.imageSize
        let images = try dataset.batch(Array(calib), size: size)
        let npy = NpyWriter.serialize(dtype: .float32, shape: images.shape,
                                      bytes: Data(bytes: images.data, count: images.count * MemoryLayout<Float>.size))
        let imagesSHA = SHA256.hex(of: npy)
        let modelSHA = try SHA256.hex(ofFile: modelPath)
        var blobs: [Data] = []
        let modelDelivery: Delivery, imagesDelivery: Delivery
        switch ship {
        case .inline:
            blobs = [try Data(contentsOf: URL(fileURLWithPath: modelPath), options: .alwaysMapped), npy]
            modelDelivery = .inline(frame: 2, sha256: modelSHA)
            imagesDelivery = .inline(frame: 3, sha256: imagesSHA)
        case .path:
            try AtomicFile.write(npy, to: imagesPath)
            modelDelivery = .path(path: (modelPath as NSString).standardizingPath, sha256: modelSHA)
            imagesDelivery = .path(path: (imagesPath as NSString).standardizingPath, sha256: imagesSHA)
        }
        let shards = SearchCalibration.shards(calib, recipe: recipe).map(ShardRange.init)
        let ranges = try SearchCalibration.smoothingRanges(model, recipe: recipe, calib: calib) {
            images.slice(($0.lowerBound - calib.lowerBound)..<($0.upperBound - calib.lowerBound))
        }
        let job = Job(model: modelDelivery, modelSpec: JobModelSpec(family: model.family.name, spec: try model.encodedSpec()),
                      images: imagesDelivery, imageOffset: calib.lowerBound, smoothingRanges: ranges, recipe: recipe.canonicalJSON,
                      shards: shards, heartbeat: heartbeat, liveness: liveness)
        return JobMaterial(job: job, blobs: blobs, fingerprint: try RunFingerprint.of(job, overrides: overrides))
    }
}

/// A worker's copy of a job: the model and the calibration images, checked against their sha256.
final class JobInputs: @unchecked Sendable {
    let model: any SearchableModel
    let recipe: Recipe
    let images: Tensor
    let imageOffset: Int
    /// The ops a TASK may name.
    let ops: Set<String>

    /// Resolves the deliveries of `job` (inline frames `blobs`), checks the hashes, and loads.
    init(job: Job, blobs: [Data], scratchDirectory: String) throws {
        func bytes(_ d: Delivery, _ what: String) throws -> Data {
            let data: Data
            switch d {
            case let .inline(frame, _): data = blobs[frame - 2]
            case let .path(path, _):
                do { data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
                    throw ClusterError.integrity(what: path, detail: "cannot read the job's \(what): \(error.localizedDescription)")
                }
            }
            let got = SHA256.hex(of: data)
            guard got == d.sha256 else { throw ClusterError.integrity(what: what, detail: "sha256 \(got), the job says \(d.sha256)") }
            return data
        }
        let modelBytes = try bytes(job.model, "model"), imageBytes = try bytes(job.images, "images")
        // The loaders read files: stage both in the scratch directory and unlink them at once.
        func staged<T>(_ data: Data, _ name: String, _ body: (String) throws -> T) throws -> T {
            let path = (scratchDirectory as NSString).appendingPathComponent("vitq-\(getpid())-\(name)")
            // Exclusive (never through a planted file or symlink), and no partial file on ENOSPC.
            do { try AtomicFile.write(data, to: path, mode: AtomicFile.secretMode, replacing: false) } catch {
                throw ClusterError.integrity(what: scratchDirectory, detail: "cannot stage the job's \(name) (\(data.count) bytes needed): \(error)")
            }
            defer { try? FileManager.default.removeItem(atPath: path) }
            return try body(path)
        }
        // The coordinator's spec: the file may carry no config (its config may have come from a JSON beside it, or flags).
        guard let family = ModelFamilies.named(job.modelSpec.family) else {
            throw ClusterError.job(ModelFamilies.unknownFamily(job.modelSpec.family))
        }
        let float: any SearchableModel = try staged(modelBytes, "model") { path in
            let file = try TensorFile.open(path: path)
            do { return try family.load(file: file, spec: job.modelSpec.spec, source: "the job's model spec") } catch let e as ModelError {
                throw ClusterError.job("modelSpec: \(e)")
            }
        }
        let npy = try staged(imageBytes, "images.npy") { try NpyArray(path: $0, expect: .float32) }
        let s = float.imageSize
        guard npy.shape.count == 4, Array(npy.shape[1...]) == [3, s, s] else {
            throw ClusterError.job("images have shape \(npy.shape), expected [N, 3, \(s), \(s)]")
        }
        images = Tensor(zeros: npy.shape)
        images.data.update(from: try npy.floats(), count: images.count)
        imageOffset = job.imageOffset
        guard let last = job.shards.last, last.upper - imageOffset <= npy.shape[0] else {
            throw ClusterError.job("the shards reach past the \(npy.shape[0]) images")
        }
        do { recipe = try Recipe.parse(job.recipe, source: "the job's recipe") } catch { throw ClusterError.job("\(error)") }
        guard (job.smoothingRanges != nil) == recipe.smoothsChannels else {
            throw ClusterError.job("smoothing ranges and the recipe's smooth_alpha/gelu_smooth_alpha disagree")
        }
        do { model = try SearchCalibration.searchModel(float, recipe: recipe, ranges: job.smoothingRanges) } catch { throw ClusterError.job("\(error)") }
        ops = Set(SearchCalibration.ops(model: model, recipe: recipe))
    }

    /// Images `range` (absolute indices) as a [B, 3, S, S] tensor.
    func load(_ range: Range<Int>) -> Tensor {
        images.slice((range.lowerBound - imageOffset)..<(range.upperBound - imageOffset))
    }
}
