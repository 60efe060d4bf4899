import ArgumentParser

/// `--deadline-floor SECONDS` of `vitq coordinator` and `vitq quantize --workers`: the least
/// stage-1 and TASK limit (Docs/PROTOCOL.md §4); the defaults are 30 s and 10 s.
enum DeadlineFloorFlag {
    static let help: ArgumentHelp = "Least stage-1 and TASK deadline in seconds (0.1...86400; default 30 s for stage 1, 10 s per TASK); a worker making no progress for 8 × the slowest unit of that kind so far (at least this) is dropped."

    /// Refuses a floor outside 0.1...86400 seconds.
    static func check(_ seconds: Double?) throws {
        if let f = seconds, !(f.isFinite && f >= 0.1 && f <= 86_400) { throw ValidationError("--deadline-floor must be in 0.1...86400 seconds") }
    }
}
