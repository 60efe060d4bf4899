extension CoordinatorCommand {
    /// The coordinator's own files that `--out` must not be: the journal (an input with
    /// `--resume`), the status file, and the key files. Checks on the way that the journal's and the
    /// status file's folders are writable and that the status file,
    /// which is rewritten as the run goes, is none of the inputs, the journal or the output.
    func coordinatorFiles(journal: String) throws -> [(flag: String, path: String?)] {
        let keys: [(flag: String, path: String?)] = [("--curve-secret", curveSecret)] + allow.map { ("--allow", $0) }
        // The journal is created with the first decision; its folder is checked now, before stage 1
        // (after --out's, beside which the default journal lies, so a bad --out is named as such).
        try OutputChecks.writableFolder(of: calibration.out, flag: "--out")
        try OutputChecks.writableFolder(of: journal, flag: "--journal")
        if let status {
            try OutputChecks.writableFolder(of: status, flag: "--status")
            try OutputChecks.notAnInput(status, flag: "--status",
                                        inputs: calibration.inputs.inputFiles + keys + [("--journal", journal), ("--out", calibration.out)])
        }
        return [("--journal", journal), ("--status", status)] + keys
    }
}
