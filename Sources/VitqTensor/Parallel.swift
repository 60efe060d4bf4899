import Dispatch
import Foundation

/// The process-wide worker-thread setting and a parallel-for built on it.
///
/// vitq does all its own threading: OpenBLAS is pinned to one thread (see ``Gemm``) and work is
/// split here, so that no library's idle threads spin on the cores our kernels need.
public enum Parallel {
    nonisolated(unsafe) private static var configured = 0

    /// The active cores, read once (Foundation reads cgroup and sysfs files on every query).
    private static let cores = ProcessInfo.processInfo.activeProcessorCount

    /// The number of threads kernels use. Defaults to the number of active cores.
    public static var threads: Int {
        get { configured > 0 ? configured : cores }
        set { configured = max(1, newValue) }
    }

    /// Runs `body(i)` for i in 0..<n, on up to ``threads`` threads. Returns when all are done.
    public static func forEach(_ n: Int, _ body: (Int) -> Void) {
        if n <= 0 { return }
        if n == 1 || threads == 1 {
            for i in 0..<n { body(i) }
            return
        }
        withoutActuallyEscaping(body) { body in
            DispatchQueue.concurrentPerform(iterations: n, execute: body)
        }
    }

    /// Splits 0..<total into at most ``threads`` contiguous chunks (each at least `minChunk` long)
    /// and runs `body(range)` on each in parallel.
    public static func forChunks(_ total: Int, minChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        if total <= 0 { return }
        let parts = max(1, min(threads, total / max(1, minChunk)))
        if parts == 1 { body(0..<total); return }
        forEach(parts) { p in
            let lo = total * p / parts, hi = total * (p + 1) / parts
            if lo < hi { body(lo..<hi) }
        }
    }

    /// Runs `body(range)` on the fixed blocks `[k·block, min((k+1)·block, total))` in parallel.
    /// Unlike ``forChunks(_:minChunk:_:)`` the split does not depend on ``threads``, so work
    /// whose rounding depends on where a range starts (a BLAS call's edge tiles) gives the same
    /// bits on any number of threads.
    public static func forBlocks(_ total: Int, block: Int, _ body: (Range<Int>) -> Void) {
        if total <= 0 { return }
        let b = max(1, block)
        forEach((total + b - 1) / b) { k in body((k * b)..<min((k + 1) * b, total)) }
    }
}
