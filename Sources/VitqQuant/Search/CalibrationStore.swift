import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Stage-1 storage that cannot be allocated, naming what and why.
public struct CalibrationStoreError: Error, CustomStringConvertible {
    public let description: String
}

/// One collected activation or gradient over the images of a shard: `images` × `perImage`
/// floats, image-major. Held in memory, or in an unlinked memory-mapped file in the spill
/// directory once the store's memory budget is used up.
public final class CapturedTensor: @unchecked Sendable {
    /// Shape of one image's slice, e.g. [tokens, features] or [heads, tokens, tokens].
    public let imageShape: [Int]
    public let images: Int
    public let perImage: Int
    let base: UnsafeMutablePointer<Float>
    let byteCount: Int
    /// Whether the floats live in a memory-mapped spill file.
    public let spilled: Bool

    init(imageShape: [Int], images: Int, spillDirectory: String?) throws {
        self.imageShape = imageShape; self.images = images
        perImage = imageShape.reduce(1, *)
        byteCount = max(64, images * perImage * 4)
        if let dir = spillDirectory {
            let path = "\(dir)/vitq-stage1-\(getpid())-\(UUID().uuidString).f32"
            let fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0o600)
            guard fd >= 0 else { throw CalibrationStoreError(description: "\(path): cannot create spill file: \(String(cString: strerror(errno)))") }
            defer { close(fd); unlink(path) }   // unlinked at once: nothing is left behind
            guard ftruncate(fd, off_t(byteCount)) == 0,
                  let p = mmap(nil, byteCount, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
                throw CalibrationStoreError(description: "\(path): cannot map \(byteCount) bytes: \(String(cString: strerror(errno)))")
            }
            base = p.assumingMemoryBound(to: Float.self)
            spilled = true
        } else {
            let raw = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64)
            base = raw.assumingMemoryBound(to: Float.self)
            spilled = false
        }
    }

    deinit {
        if spilled { munmap(UnsafeMutableRawPointer(base), byteCount) } else { UnsafeMutableRawPointer(base).deallocate() }
    }

    /// The floats of image `i` (0-based within the shard).
    @inline(__always) public func image(_ i: Int) -> UnsafeMutablePointer<Float> { base + i * perImage }
}

/// The tensors stage 1 collected for one shard, by name (``CalibrationCollector`` names them).
/// Allocation beyond `memoryBudget` bytes goes to memory-mapped files in `spillDirectory`.
public final class CalibrationStore: @unchecked Sendable {
    /// The global indices of the shard's images.
    public let images: Range<Int>
    public let memoryBudget: Int
    public let spillDirectory: String
    private(set) public var tensors: [String: CapturedTensor] = [:]
    private(set) public var bytesInMemory = 0
    private(set) public var bytesSpilled = 0
    private let lock = NSLock()

    public init(images: Range<Int>, memoryBudget: Int = Int.max, spillDirectory: String = NSTemporaryDirectory()) {
        self.images = images; self.memoryBudget = memoryBudget; self.spillDirectory = spillDirectory
    }

    /// The tensor `name`, allocated on first use with one image's shape.
    public func tensor(_ name: String, imageShape: [Int]) throws -> CapturedTensor {
        try lock.withLock {
            if let t = tensors[name] {
                precondition(t.imageShape == imageShape, "\(name): shape \(imageShape) after \(t.imageShape)")
                return t
            }
            let bytes = images.count * imageShape.reduce(1, *) * 4
            let spill = bytesInMemory + bytes > memoryBudget
            let t = try CapturedTensor(imageShape: imageShape, images: images.count, spillDirectory: spill ? spillDirectory : nil)
            if spill { bytesSpilled += bytes } else { bytesInMemory += bytes }
            tensors[name] = t
            return t
        }
    }

    /// The tensor `name`; a missing one is a programming error in the collector.
    public subscript(_ name: String) -> CapturedTensor {
        guard let t = lock.withLock({ tensors[name] }) else { preconditionFailure("stage 1 did not collect '\(name)'") }
        return t
    }
}
