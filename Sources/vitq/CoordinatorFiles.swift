extension CoordinatorCommand {
    /// The coordinator's own files that `--out` must not be: the journal (an input with
    /// `--resume`), the status file, and the key files.
    func coordinatorFiles(journal: String) -> [(flag: String, path: String?)] {
        [("--journal", journal), ("--status", status), ("--curve-secret", curveSecret)] + allow.map { ("--allow", $0) }
    }
}
