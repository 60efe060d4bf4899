import Foundation

/// A 64-byte aligned, zero-initialised block of raw memory that frees itself: packed GEMM
/// operands and other scratch that is not a float ``Tensor``.
public final class AlignedBuffer: @unchecked Sendable {
    public let byteCount: Int
    public let raw: UnsafeMutableRawPointer

    public init(byteCount: Int) {
        self.byteCount = byteCount
        raw = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 64), alignment: 64)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 64))
    }

    deinit { raw.deallocate() }

    /// The memory as `count` elements of `T`.
    public func pointer<T>(_: T.Type) -> UnsafeMutablePointer<T> { raw.assumingMemoryBound(to: T.self) }
}

/// Reuses scratch buffers across calls, so that hot loops do not pay page faults for fresh
/// allocations. Thread-safe; a buffer is held by one caller between ``take(bytes:)`` and ``give(_:)``.
public final class ScratchPool: @unchecked Sendable {
    private let lock = NSLock()
    private var free: [AlignedBuffer] = []

    public init() {}

    /// The process-wide pool.
    public static let shared = ScratchPool()

    /// A buffer of at least `bytes` bytes (contents unspecified).
    public func take(bytes: Int) -> AlignedBuffer {
        lock.withLock {
            if let i = free.firstIndex(where: { $0.byteCount >= bytes }) { return free.remove(at: i) }
            return AlignedBuffer(byteCount: bytes)
        }
    }

    /// Returns a buffer for reuse. The pool keeps at most 16, dropping the smallest.
    public func give(_ buffer: AlignedBuffer) {
        lock.withLock {
            free.append(buffer)
            if free.count > 16 { free.sort { $0.byteCount > $1.byteCount }; free.removeLast() }
        }
    }

    /// Runs `body` with a buffer of at least `bytes` bytes.
    public func with<R>(bytes: Int, _ body: (AlignedBuffer) throws -> R) rethrows -> R {
        let b = take(bytes: bytes)
        defer { give(b) }
        return try body(b)
    }
}
