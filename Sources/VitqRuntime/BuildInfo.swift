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

    /// Which kernel variants run here.
    public static var kernels: String {
        vitq_kernels_use_avx2() != 0 ? "AVX2+FMA" : (vitq_cpu_has_avx2() != 0 ? "scalar (forced)" : "scalar (no AVX2)")
    }

    /// Everything `vitq version` reports, one field per line of ``lines`` (`vitq version --json`).
    public struct Report: Encodable, Sendable {
        public var version: String, kernels: String, openblas: String, libzmq: String, libpng: String, cores: Int
    }

    public static var report: Report {
        Report(version: version, kernels: kernels, openblas: openBLAS, libzmq: zmq, libpng: png,
               cores: ProcessInfo.processInfo.activeProcessorCount)
    }

    /// The report as aligned text lines.
    public static var lines: [String] {
        let r = report
        return ["vitq \(r.version)", "kernels   \(r.kernels)", "openblas  \(r.openblas)", "libzmq    \(r.libzmq)", "libpng    \(r.libpng)",
                "cores     \(r.cores)"]
    }
}
