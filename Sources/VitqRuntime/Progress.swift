import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A one-line progress bar on stderr, drawn only when stderr is a terminal (or VITQ_PROGRESS=1),
/// so logs and CI output stay clean.
public final class ProgressBar {
    let label: String
    let total: Int
    let start = Date()
    let enabled: Bool
    private var lastDraw = Date.distantPast
    private(set) var done = 0

    public init(_ label: String, total: Int) {
        self.label = label
        self.total = max(total, 1)
        enabled = isatty(2) != 0 || ProcessInfo.processInfo.environment["VITQ_PROGRESS"] == "1"
    }

    /// Advances by `n` units and redraws at most ten times a second.
    public func advance(_ n: Int = 1, detail: String = "") {
        done += n
        guard enabled else { return }
        let now = Date()
        if done < total && now.timeIntervalSince(lastDraw) < 0.1 { return }
        lastDraw = now
        let frac = Double(done) / Double(total)
        let width = 30, filled = Int(frac * Double(width))
        let elapsed = now.timeIntervalSince(start)
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let line = String(format: "\r%@ [%@] %d/%d %3.0f%% elapsed %.0fs eta %.0fs %@", label, bar, done, total, frac * 100, elapsed, eta, detail)
        FileHandle.standardError.write(Data(line.utf8))
    }

    /// Ends the bar's line.
    public func finish() {
        if enabled { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
