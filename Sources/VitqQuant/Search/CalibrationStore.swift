import Foundation
import VitqFormats
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
        perImage = try Self.product(imageShape, "one image's shape \(imageShape)")
        byteCount = max(64, try Self.product([images, perImage, MemoryLayout<Float>.size], "\(images) images of shape \(imageShape)"))
        if let dir = spillDirectory {
            base = try Self.mapSpillFile(in: dir, bytes: byteCount)
            spilled = true
        } else {
            let raw = UnsafeMutableRawPointer.allocate(byteCount: byteCount, alignment: 64)
            base = raw.assumingMemoryBound(to: Float.self)
            spilled = false
        }
    }

    /// The product of `factors`, or an error naming `what` when it overflows or a factor is negative.
    static func product(_ factors: [Int], _ what: String) throws -> Int {
        guard let p = CheckedSize.product(factors) else {
            throw CalibrationStoreError(description: "stage 1: \(what) has a negative size or is too large to store")
        }
        return p
    }

    /// A shared mapping of a new spill file in `dir` of `bytes` bytes, whose blocks are reserved
    /// on disk first (`posix_fallocate`): a full disk is then this one-line error naming the
    /// folder and the bytes, never a SIGBUS when a page of a sparse file is first written. The
    /// file is unlinked at once, so nothing is left in `dir` whatever happens.
    static func mapSpillFile(in dir: String, bytes: Int) throws -> UnsafeMutablePointer<Float> {
        let path = (dir as NSString).appendingPathComponent("vitq-stage1-\(getpid())-\(UUID().uuidString).f32")
        let fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw CalibrationStoreError(description: "\(dir): cannot create a stage-1 spill file: \(String(cString: strerror(errno)))")
        }
        defer { close(fd); unlink(path) }   // unlinked at once: nothing is left behind
        var rc: Int32
        repeat { rc = posix_fallocate(fd, 0, off_t(bytes)) } while rc == EINTR
        // posix_fallocate returns the error (it does not set errno).
        guard rc == 0 else {
            throw CalibrationStoreError(description: "\(dir): cannot reserve \(bytes) bytes for a stage-1 spill file (--spill-dir): \(String(cString: strerror(rc)))")
        }
        guard let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            throw CalibrationStoreError(description: "\(dir): cannot map \(bytes) bytes of a stage-1 spill file: \(String(cString: strerror(errno)))")
        }
        return p.assumingMemoryBound(to: Float.self)
    }

    deinit {
        if spilled { munmap(UnsafeMutableRawPointer(base), byteCount) } else { UnsafeMutableRawPointer(base).deallocate() }
    }

    /// Lets go of the resident pages of a spilled tensor's images `images` (all by default): the
    /// floats stay in the file (and the page cache) and come back on the next read, so a spilled
    /// tensor counts against the process's RSS only while it is being written or read. In-memory
    /// tensors are left alone.
    public func releasePages(images range: Range<Int>? = nil) {
        guard spilled else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let r = range ?? 0..<images
        let lo = r.lowerBound * perImage * MemoryLayout<Float>.size / page * page
        let hi = min(byteCount, (r.upperBound * perImage * MemoryLayout<Float>.size + page - 1) / page * page)
        guard hi > lo else { return }
        _ = madvise(UnsafeMutableRawPointer(base) + lo, hi - lo, MADV_DONTNEED)
    }

    /// The floats of image `i` (0-based within the shard).
    @inline(__always) public func image(_ i: Int) -> UnsafeMutablePointer<Float> { base + i * perImage }
}

/// The bytes of stage-1 tensors one process may keep in memory, shared by the stores of all its
/// shards: a tensor that does not fit goes to a spill file, and a store gives its bytes back
/// when it is dropped.
public final class MemoryBudget: @unchecked Sendable {
    /// The limit in bytes.
    public let limit: Int
    private(set) public var used = 0
    private let lock = NSLock()

    public init(limit: Int = Int.max) { self.limit = max(0, limit) }

    /// Takes `bytes` if they fit under the limit (true), else takes nothing (false).
    func take(_ bytes: Int) -> Bool {
        lock.withLock {
            guard bytes <= limit - used else { return false }
            used += bytes
            return true
        }
    }

    /// Gives back `bytes` taken before.
    func give(_ bytes: Int) { lock.withLock { used -= bytes } }
}

/// The tensors stage 1 collected for one shard, by name (``CalibrationCollector`` names them).
/// Tensors that do not fit in the process's ``MemoryBudget`` go to memory-mapped files in
/// `spillDirectory`.
public final class CalibrationStore: @unchecked Sendable {
    /// The global indices of the shard's images.
    public let images: Range<Int>
    public let budget: MemoryBudget
    public let spillDirectory: String
    private(set) public var tensors: [String: CapturedTensor] = [:]
    private(set) public var bytesInMemory = 0
    private(set) public var bytesSpilled = 0
    private let lock = NSLock()

    public init(images: Range<Int>, budget: MemoryBudget = MemoryBudget(), spillDirectory: String = NSTemporaryDirectory()) {
        self.images = images; self.budget = budget; self.spillDirectory = spillDirectory
    }

    /// A store with a budget of its own of `memoryBudget` bytes.
    public convenience init(images: Range<Int>, memoryBudget: Int, spillDirectory: String = NSTemporaryDirectory()) {
        self.init(images: images, budget: MemoryBudget(limit: memoryBudget), spillDirectory: spillDirectory)
    }

    deinit { budget.give(bytesInMemory) }

    /// The tensor `name`, allocated on first use with one image's shape.
    public func tensor(_ name: String, imageShape: [Int]) throws -> CapturedTensor {
        try lock.withLock {
            if let t = tensors[name] {
                precondition(t.imageShape == imageShape, "\(name): shape \(imageShape) after \(t.imageShape)")
                return t
            }
            let bytes = try CapturedTensor.product([images.count] + imageShape + [MemoryLayout<Float>.size], "\(name) of shape \(imageShape)")
            let spill = !budget.take(bytes)
            let t: CapturedTensor
            do {
                t = try CapturedTensor(imageShape: imageShape, images: images.count, spillDirectory: spill ? spillDirectory : nil)
            } catch {
                if !spill { budget.give(bytes) }
                throw error
            }
            if spill { bytesSpilled += bytes } else { bytesInMemory += bytes }
            tensors[name] = t
            return t
        }
    }

    /// ``CapturedTensor/releasePages(images:)`` of every spilled tensor: what a search step read
    /// from spill files leaves the RSS when the step is done.
    public func releaseSpilledPages() {
        let spilled = lock.withLock { tensors.values.filter(\.spilled) }
        for t in spilled { t.releasePages() }
    }

    /// The tensor `name`; a missing one is a programming error in the collector.
    /// Whether stage 1 collected `name`.
    public func has(_ name: String) -> Bool { lock.withLock { tensors[name] != nil } }

    public subscript(_ name: String) -> CapturedTensor {
        guard let t = lock.withLock({ tensors[name] }) else { preconditionFailure("stage 1 did not collect '\(name)'") }
        return t
    }
}
