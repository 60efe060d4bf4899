import ArgumentParser

/// The checks of `--verify F` (`coordinator`, `quantize --workers N`).
enum VerifyFlag {
    /// F must be in 0...1, and a verified run needs at least 2 workers (a mismatch needs 3).
    static func check(_ fraction: Double, workers: Int, workersFlag: String) throws {
        guard fraction.isFinite, (0...1).contains(fraction) else { throw ValidationError("--verify must be a fraction in 0...1, got \(fraction)") }
        guard fraction > 0 else { return }
        if workers < 2 {
            throw ValidationError("--verify needs at least 2 workers (3 to settle a mismatch); \(workersFlag) is \(workers)")
        }
    }
}
