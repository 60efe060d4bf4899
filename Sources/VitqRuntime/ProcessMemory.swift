import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How much memory this process has used and this machine (or its cgroup) allows.
public enum ProcessMemory {
    /// The process's peak resident set size in bytes: `VmHWM` of /proc/self/status, the high-water
    /// mark of this process's own memory. (`getrusage`'s `ru_maxrss` is not used: Linux carries the
    /// spawning process's high-water mark over `execve`, so a worker started by a large parent
    /// would report the parent's peak.) Falls back to `ru_maxrss` where /proc is missing.
    public static func peakResidentBytes() -> Int {
        if let hwm = statusField("VmHWM:") { return hwm }
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
        return Int(usage.ru_maxrss) * 1024
    }

    /// The process's current resident set size in bytes (`VmRSS`), or 0 where /proc is missing.
    public static func residentBytes() -> Int { statusField("VmRSS:") ?? 0 }

    /// Resets the peak (`VmHWM`) to the current RSS (Linux: "5" to /proc/self/clear_refs), so that
    /// ``peakResidentBytes()`` measures from now on.
    public static func resetPeak() {
        guard let h = FileHandle(forWritingAtPath: "/proc/self/clear_refs") else { return }
        h.write(Data("5".utf8))
        try? h.close()
    }

    /// A "Name:  N kB" field of /proc/self/status in bytes.
    private static func statusField(_ name: String) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name) }),
              let kib = Int(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return kib * 1024
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
