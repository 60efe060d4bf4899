import COpenBLAS
import CPNG
import CVitqKernels
import CZmq
import Foundation

/// What vitq was built against and what the CPU offers (`vitq version`).
public enum BuildInfo {
    public static let version = "0.1.0"

    /// The linked libzmq version, and whether it was built with CURVE security.
    public static var zmq: String {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        let curve = zmq_has("curve") != 0 ? "CURVE available" : "no CURVE"
        return "\(major).\(minor).\(patch) (\(curve))"
    }

    /// OpenBLAS's build configuration and the core it selected.
    public static var openBLAS: String {
        "\(String(cString: openblas_get_config())), core \(String(cString: openblas_get_corename()))"
    }

    /// The linked libpng version.
    public static var png: String {
        let v = png_access_version_number()
        return "\(v / 10000).\(v / 100 % 100).\(v % 100)"
    }

    /// Which kernel variants run here (capped by VITQ_ISA or VITQ_FORCE_SCALAR).
    public static var kernels: String {
        switch Int(vitq_kernels_isa()) {
        case Int(VITQ_ISA_AVX512_VNNI): return "AVX-512 VNNI integer GEMM, AVX2+FMA elsewhere"
        case Int(VITQ_ISA_AVX_VNNI): return "AVX-VNNI integer GEMM, AVX2+FMA elsewhere" + (vitq_cpu_has_avx512vnni() != 0 ? " (capped)" : "")
        case Int(VITQ_ISA_AVX2):
            return vitq_cpu_has_avx512vnni() != 0 || vitq_cpu_has_avxvnni() != 0 ? "AVX2+FMA (capped)" : "AVX2+FMA"
        default: return vitq_cpu_has_avx2() != 0 ? "scalar (forced)" : "scalar (no AVX2)"
        }
    }

    /// The SIMD flags of /proc/cpuinfo that decide the kernels (empty where there is no such file).
    public static let cpuFlags: [String] = {
        let wanted = ["avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni"]
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return [] }
        let have = Set(line.split(separator: " ").map(String.init))
        return wanted.filter(have.contains)
    }()

    /// What every benchmark row is labelled with: the CPU's flags and the kernels that ran.
    public struct Machine: Encodable, Sendable {
        public var cpuFlags: [String], kernels: String
    }

    public static var machine: Machine { Machine(cpuFlags: cpuFlags, kernels: kernels) }

    /// Everything `vitq version` reports, one field per line of ``lines`` (`vitq version --json`).
    public struct Report: Encodable, Sendable {
        public var version: String, kernels: String, cpuFlags: [String], openblas: String, libzmq: String, libpng: String, cores: Int
    }

    public static var report: Report {
        Report(version: version, kernels: kernels, cpuFlags: cpuFlags, openblas: openBLAS, libzmq: zmq, libpng: png,
               cores: ProcessInfo.processInfo.activeProcessorCount)
    }

    /// The report as aligned text lines.
    public static var lines: [String] {
        let r = report
        return ["vitq \(r.version)", "kernels   \(r.kernels)", "cpu flags \(r.cpuFlags.joined(separator: " "))", "openblas  \(r.openblas)", "libzmq    \(r.libzmq)", "libpng    \(r.libpng)",
                "cores     \(r.cores)"]
    }
}
