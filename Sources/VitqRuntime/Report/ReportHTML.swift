import Foundation

/// Renders a ``QuantizationReport`` as one self-contained HTML page: inline CSS and SVG, no
/// script and no network reference. The numbers behind each mark are in `data-*` attributes.
public enum ReportHTML {
    /// The page of `r`.
    public static func render(_ r: QuantizationReport) -> String {
        let e = SVGChart.escape
        var h = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>vitq report: \(e(r.recipeName))</title>
            <style>
            body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1280px; }
            h1 { font-size: 22px; margin: 0 0 12px; } h2 { font-size: 17px; margin: 28px 0 8px; }
            table { border-collapse: collapse; } td, th { padding: 2px 8px; text-align: left; vertical-align: middle; }
            table.ops tr:nth-child(even), table.modules tr:nth-child(even) { background: #f6f8fa; }
            th { border-bottom: 1px solid #999; font-weight: 600; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
            .float { color: #9e9e9e; } .chip { display: inline-block; min-width: 18px; padding: 0 4px; border-radius: 3px; color: #fff; text-align: center; }
            .charts { display: flex; flex-wrap: wrap; gap: 24px; } svg text { font-size: 12px; } svg .title { font-size: 14px; font-weight: 600; }
            svg .tick { font-size: 11px; fill: #444; } .note { color: #555; max-width: 900px; }
            </style></head><body>
            <h1>vitq report: \(e(r.recipeName))</h1>
            <table class="summary">
            """
        for (label, value) in r.summary { h += "<tr><th>\(e(label))</th><td>\(e(value))</td></tr>\n" }
        h += "</table>\n"
        if let a = r.allocation { h += allocation(a, measured: r.measured) }
        h += ops(r)
        return h + "</body></html>\n"
    }

    static func chip(_ bits: Int?) -> String {
        guard let b = bits else { return "<span class=\"chip\" style=\"background:#9e9e9e\">f</span>" }
        return "<span class=\"chip\" style=\"background:\(SVGChart.colour(bits: b))\">\(b)</span>"
    }

    static func attr(_ name: String, _ v: Double?) -> String { v.map { " data-\(name)=\"\($0)\"" } ?? "" }
    static func attr(_ name: String, _ v: Int?) -> String { v.map { " data-\(name)=\"\($0)\"" } ?? "" }

    static func ops(_ r: QuantizationReport) -> String {
        let e = SVGChart.escape
        let floats = r.ops.filter(\.isFloat).map(\.name)
        var h = "<h2>Per op</h2>\n<p class=\"note\">\(r.ops.count - floats.count) of \(r.ops.count) products quantized"
        h += floats.isEmpty ? "; none stays in float." : "; in float: \(e(floats.joined(separator: ", ")))."
        h += " W is the weight's width (for an attention product, the second operand's), A the input's. The relative output error"
        h += " ‖Ô − O‖ / ‖O‖ is the search's, on the calibration images (log scale, 10⁻⁴ to 1)."
        let profiled = r.ops.contains { $0.profile != nil }
        if profiled { h += " The histogram is of the input's magnitudes on the calibration images (log counts); the red line is the clipping the quantizer chose."
            h += " The range is measured through the file's weights (rounded to their widths) with float activations, so past the first op it differs"
            h += " slightly from the float model the calibration observed." }
        h += "</p>\n<table class=\"ops\"><tr><th>op</th><th>W</th><th>A</th><th>input quantizer</th><th>relative error</th><th></th>"
        h += profiled ? "<th>clip</th><th>range</th><th>input magnitudes and clipping</th></tr>\n" : "<th>clip</th></tr>\n"
        for op in r.ops {
            let a = " data-op=\"\(e(op.name))\"" + attr("weight-bits", op.weightBits) + attr("input-bits", op.inputBits)
                + attr("relative-error", op.relativeError) + attr("clip", op.clip) + attr("range", op.profile?.maxAbs)
            h += "<tr class=\"op\(op.isFloat ? " float" : "")\"\(a)><td>\(e(op.name))</td><td>\(chip(op.weightBits))</td><td>\(chip(op.inputBits))</td>"
            h += "<td>\(e(op.inputQuantizer ?? (op.isFloat ? "float" : "")))</td>"
            h += "<td>" + SVGChart.logBar(op.relativeError, lo: 1e-4, hi: 1, width: 160, height: 12, colour: SVGChart.colour(bits: op.weightBits),
                                           attributes: "data-op=\"\(e(op.name))\"") + "</td>"
            h += "<td class=\"num\">\(op.relativeError.map { String(format: "%.4f", $0) } ?? "")</td>"
            h += "<td class=\"num\">\(op.clip.map { String(format: "%.4g", $0) } ?? "")</td>"
            if profiled {
                h += "<td class=\"num\">\(op.profile.map { String(format: "%.4g", $0.maxAbs) } ?? "")</td><td>"
                if let p = op.profile {
                    h += SVGChart.histogram(p.counts, maxAbs: p.maxAbs, clip: op.clip, width: 220, height: 22,
                                            attributes: "data-op=\"\(e(op.name))\" data-counts=\"\(p.counts.map(String.init).joined(separator: ","))\"")
                }
                h += "</td>"
            }
            h += "</tr>\n"
        }
        return h + "</table>\n"
    }

    static func allocation(_ a: QuantizationReport.Allocation, measured: [QuantizationReport.Measured]) -> String {
        let e = SVGChart.escape
        var h = "<h2>Mixed precision (\(e(a.metric)))</h2>\n<p class=\"note\">Budget \(a.budget) average bits; chosen "
        h += String(format: "%.3f weight bits, %.3f activation bits, Ω %.4g. ", a.chosen.averageWeightBits, a.averageActivationBits, a.chosen.omega)
        h += a.metric == "nuclear"
            ? "Ω = Σ σ · ‖Ô − O‖², σ the nuclear norm of each module's attention map or output features (Liu et al.)."
            : "Ω = Σ (∂L/∂O)² (Ô − O)², the task-loss-weighted perturbation of each module (vitq's Fisher allocation)."
        h += " Each frontier point is the least Ω at its size; measured points are runs evaluated on the accuracy protocol.</p>\n<div class=\"charts\">"
        let frontier = SVGChart.Series(label: "frontier", colour: "#1565c0", line: true, radius: 3.5, cssClass: "frontier",
                                       points: a.frontier.map { ($0.averageWeightBits, $0.omega, "data-bits=\"\($0.averageWeightBits)\" data-omega=\"\($0.omega)\"") })
        let chosen = SVGChart.Series(label: "chosen", colour: "#d50000", line: false, radius: 6, cssClass: "chosen",
                                     points: [(a.chosen.averageWeightBits, a.chosen.omega, "data-bits=\"\(a.chosen.averageWeightBits)\" data-omega=\"\(a.chosen.omega)\"")])
        h += SVGChart.scatter(title: "Pareto frontier of (size, Ω)", xLabel: "average weight bits", yLabel: "Ω (log)", logY: true, series: [frontier, chosen])
        let metrics = Array(Set(measured.map(\.metric))).sorted()
        if !measured.isEmpty {
            let colours = ["fisher": "#2e7d32", "nuclear": "#6a1b9a"]
            let series = metrics.map { m in
                SVGChart.Series(label: m, colour: colours[m] ?? "#555", line: true, radius: 4.5, cssClass: "measured",
                                points: measured.filter { $0.metric == m }.sorted { $0.averageWeightBits < $1.averageWeightBits }.map {
                                    ($0.averageWeightBits, 100 * ($0.top1 ?? $0.agreement),
                                     "data-metric=\"\(e(m))\" data-bits=\"\($0.averageWeightBits)\"" + attr("top1", $0.top1) + attr("agreement", $0.agreement))
                                })
            }
            let y = measured.allSatisfy { $0.top1 != nil } ? "top-1 (%)" : "agreement with FP32 (%)"
            h += SVGChart.scatter(title: "Measured accuracy against size", xLabel: "average weight bits", yLabel: y, logY: false, series: series)
        }
        h += "</div>\n<table class=\"modules\"><tr><th>module</th><th>bits</th><th>weights</th>"
        h += a.widths.map { "<th>Ω at \($0) bits</th>" }.joined() + "<th>nuclear norm</th></tr>\n"
        let lo = max(a.modules.flatMap(\.omega).filter { $0 > 0 }.min() ?? 1e-12, 1e-30), hi = max(a.modules.flatMap(\.omega).max() ?? 1, lo * 10)
        for m in a.modules {
            h += "<tr class=\"module\" data-module=\"\(e(m.name))\" data-bits=\"\(m.bits)\" data-omega=\"\(m.omega.map { "\($0)" }.joined(separator: ","))\""
            h += attr("nuclear-norm", m.nuclearNorm) + "><td>\(e(m.name))</td><td>\(chip(m.bits))</td><td class=\"num\">\(m.weightParameters)</td>"
            for (w, o) in zip(a.widths, m.omega) {
                h += "<td>" + SVGChart.logBar(o, lo: lo, hi: hi, width: 110, height: 10, colour: w == m.bits ? "#d50000" : "#90a4ae", attributes: "") +
                     " <span class=\"tick\">\(String(format: "%.3g", o))</span></td>"
            }
            h += "<td class=\"num\">\(m.nuclearNorm.map { String(format: "%.4g", $0) } ?? "")</td></tr>\n"
        }
        return h + "</table>\n"
    }
}
