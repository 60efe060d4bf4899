import Foundation
import VitqRuntime

/// `--memory-budget MiB` and `--spill-dir`: where stage 1 keeps what it collects. Without the
/// flag the budget is half of what the machine (or its cgroup) allows, split among the
/// processes that share it, and the run says so on stderr when stage 1 starts.
enum MemoryBudgetFlag {
    static let help = "Stage-1 memory in MiB per process before collected tensors spill to memory-mapped files (default: half of the machine's memory or cgroup limit, split among local workers)."

    /// Refuses a negative or too large `--memory-budget`.
    static func check(_ mib: Int?) throws {
        guard let mib else { return }
        if mib < 0 { throw FlagError("--memory-budget must be non-negative") }
        if mib > FlagLimits.maxMemoryBudgetMiB { throw FlagError("--memory-budget \(mib) MiB is more than \(FlagLimits.maxMemoryBudgetMiB) MiB") }
    }

    /// The storage of one of `sharing` stage-1 processes on this machine; its `announcement` reports it.
    static func storage(mib: Int?, spillDir: String?, sharing: Int = 1) -> StageOneStorage {
        let dir = spillDir ?? NSTemporaryDirectory()
        let (bytes, why) = mib.map { ($0 << 20, nil as String?) } ?? StageOneStorage.defaultBudget(sharing: sharing)
        var s = StageOneStorage(memoryBudget: bytes, spillDirectory: dir)
        s.announcement = s.describe(why: why)
        return s
    }

}
