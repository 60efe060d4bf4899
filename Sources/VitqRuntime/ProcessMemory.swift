import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How much memory this process has used and this machine (or its cgroup) allows.
public enum ProcessMemory {
    /// The process's peak resident set size in bytes (`getrusage`'s `ru_maxrss`, KiB on Linux).
    public static func peakResidentBytes() -> Int {
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
        return Int(usage.ru_maxrss) * 1024
    }

    /// User plus system CPU seconds this process has used so far.
    public static func cpuSeconds() -> Double {
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// The memory this process may use: the physical memory, or the cgroup's limit when that is
    /// lower (cgroup v2 `memory.max`, or v1 `memory.limit_in_bytes`), as under Slurm or a container.
    public static func available() -> (bytes: Int, source: String) {
        let physical = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        for path in ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"] {
            if let text = try? String(contentsOfFile: path, encoding: .utf8),
               let limit = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), limit > 0, limit < physical {
                return (limit, "the cgroup limit \(path)")
            }
        }
        return (physical, "physical memory")
    }

    /// `n` bytes for people: "1.5 GiB", "12.0 MiB".
    public static func describe(_ n: Int) -> String {
        n >= 1 << 30 ? String(format: "%.1f GiB", Double(n) / Double(1 << 30)) : String(format: "%.1f MiB", Double(n) / Double(1 << 20))
    }
}
