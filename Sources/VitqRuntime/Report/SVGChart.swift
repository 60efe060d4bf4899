import Foundation

/// Inline SVG pieces for ``ReportHTML``: no script, no external reference. Every mark carries
/// its numbers as `data-*` attributes (Swift's shortest round-trip form), so a test can read the
/// chart back and compare it with the file it was made from.
enum SVGChart {
    /// `s` with the five XML special characters escaped.
    static func escape(_ s: String) -> String {
        var o = ""
        for c in s {
            switch c {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            case "'": o += "&#39;"
            default: o.append(c)
            }
        }
        return o
    }

    /// A coordinate or length with two decimals.
    static func n(_ x: Double) -> String { String(format: "%.2f", x) }

    /// The colour of a bit width (float: grey).
    static func colour(bits: Int?) -> String {
        guard let b = bits else { return "#9e9e9e" }
        let palette = [2: "#b71c1c", 3: "#e65100", 4: "#f9a825", 5: "#9e9d24", 6: "#2e7d32", 7: "#00838f", 8: "#1565c0"]
        return palette[b] ?? "#555"
    }

    /// A horizontal bar for a value on a log scale from `lo` to `hi` (values outside are clamped).
    static func logBar(_ value: Double?, lo: Double, hi: Double, width: Double, height: Double, colour: String, attributes: String) -> String {
        var s = "<svg class=\"bar\" width=\"\(n(width))\" height=\"\(n(height))\" viewBox=\"0 0 \(n(width)) \(n(height))\" \(attributes)>"
        s += "<rect x=\"0\" y=\"0\" width=\"\(n(width))\" height=\"\(n(height))\" fill=\"#f1f1f1\"/>"
        if let v = value, v > 0 {
            let f = min(max((log10(v) - log10(lo)) / (log10(hi) - log10(lo)), 0.01), 1)
            s += "<rect x=\"0\" y=\"1\" width=\"\(n(f * width))\" height=\"\(n(height - 2))\" fill=\"\(colour)\"/>"
        }
        return s + "</svg>"
    }

    /// An input's histogram of magnitudes (log counts) over [0, max(range, clip)], with the clipping as a red line.
    static func histogram(_ counts: [Int], maxAbs: Double, clip: Double?, width: Double, height: Double, attributes: String) -> String {
        var s = "<svg class=\"hist\" width=\"\(n(width))\" height=\"\(n(height))\" viewBox=\"0 0 \(n(width)) \(n(height))\" \(attributes)>"
        s += "<rect x=\"0\" y=\"0\" width=\"\(n(width))\" height=\"\(n(height))\" fill=\"#f7f7f7\"/>"
        let top = max(maxAbs, clip ?? 0)
        guard top > 0, !counts.isEmpty else { return s + "</svg>" }
        let span = maxAbs / top * width, bw = span / Double(counts.count)
        let peak = log10(Double(counts.max()! + 1))
        for (i, c) in counts.enumerated() where c > 0 {
            let h = log10(Double(c + 1)) / peak * (height - 2)
            s += "<rect x=\"\(n(Double(i) * bw))\" y=\"\(n(height - h))\" width=\"\(n(max(bw - 0.3, 0.3)))\" height=\"\(n(h))\" fill=\"#607d8b\"/>"
        }
        if let c = clip {
            let x = c / top * width
            s += "<line class=\"clip\" x1=\"\(n(x))\" y1=\"0\" x2=\"\(n(x))\" y2=\"\(n(height))\" stroke=\"#d50000\" stroke-width=\"2\"/>"
        }
        return s + "</svg>"
    }

    /// A point chart with axes: `series` of (label, colour, points, joined by a line), on a linear
    /// x axis and a linear or log y axis; each point's `data-*` attributes come from `attributes`.
    struct Series {
        var label: String, colour: String, line: Bool, radius: Double, cssClass: String
        var points: [(x: Double, y: Double, attributes: String)]
    }

    static func scatter(title: String, xLabel: String, yLabel: String, logY: Bool, series: [Series], width: Double = 560, height: Double = 340) -> String {
        let all = series.flatMap(\.points).filter { $0.y.isFinite && (!logY || $0.y > 0) }
        let left = 72.0, right = 16.0, top = 28.0, bottom = 48.0
        var s = "<svg class=\"chart\" width=\"\(n(width))\" height=\"\(n(height))\" viewBox=\"0 0 \(n(width)) \(n(height))\" role=\"img\" aria-label=\"\(escape(title))\">"
        s += "<text x=\"\(n(width / 2))\" y=\"18\" text-anchor=\"middle\" class=\"title\">\(escape(title))</text>"
        guard !all.isEmpty else { return s + "<text x=\"\(n(width / 2))\" y=\"\(n(height / 2))\" text-anchor=\"middle\">no points</text></svg>" }
        let ty: (Double) -> Double = logY ? { log10($0) } : { $0 }
        var x0 = all.map(\.x).min()!, x1 = all.map(\.x).max()!, y0 = all.map { ty($0.y) }.min()!, y1 = all.map { ty($0.y) }.max()!
        if x1 - x0 < 1e-9 { x0 -= 0.5; x1 += 0.5 }
        if y1 - y0 < 1e-12 { y0 -= 0.5; y1 += 0.5 }
        let padX = (x1 - x0) * 0.05, padY = (y1 - y0) * 0.08
        x0 -= padX; x1 += padX; y0 -= padY; y1 += padY
        let pw = width - left - right, ph = height - top - bottom
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * pw }
        func py(_ y: Double) -> Double { top + ph - (ty(y) - y0) / (y1 - y0) * ph }
        s += "<rect x=\"\(n(left))\" y=\"\(n(top))\" width=\"\(n(pw))\" height=\"\(n(ph))\" fill=\"#fbfbfb\" stroke=\"#bbb\"/>"
        for i in 0...4 {
            let xv = x0 + (x1 - x0) * Double(i) / 4, yv = y0 + (y1 - y0) * Double(i) / 4
            let yl = String(format: "%.3g", logY ? pow(10, yv) : yv)
            s += "<text x=\"\(n(px(xv)))\" y=\"\(n(top + ph + 16))\" text-anchor=\"middle\" class=\"tick\">\(String(format: "%.2f", xv))</text>"
            s += "<text x=\"\(n(left - 6))\" y=\"\(n(top + ph - Double(i) / 4 * ph + 4))\" text-anchor=\"end\" class=\"tick\">\(yl)</text>"
        }
        s += "<text x=\"\(n(left + pw / 2))\" y=\"\(n(height - 8))\" text-anchor=\"middle\">\(escape(xLabel))</text>"
        s += "<text x=\"14\" y=\"\(n(top + ph / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 14 \(n(top + ph / 2)))\">\(escape(yLabel))</text>"
        for (k, se) in series.enumerated() {
            let pts = se.points.filter { $0.y.isFinite && (!logY || $0.y > 0) }
            if se.line, pts.count > 1 {
                s += "<polyline fill=\"none\" stroke=\"\(se.colour)\" stroke-width=\"1.5\" points=\"" +
                     pts.map { "\(n(px($0.x))),\(n(py($0.y)))" }.joined(separator: " ") + "\"/>"
            }
            for p in pts {
                s += "<circle class=\"\(se.cssClass)\" cx=\"\(n(px(p.x)))\" cy=\"\(n(py(p.y)))\" r=\"\(n(se.radius))\" fill=\"\(se.colour)\" \(p.attributes)/>"
            }
            let ly = top + 14 + Double(k) * 16
            s += "<circle cx=\"\(n(left + pw - 150))\" cy=\"\(n(ly - 4))\" r=\"4\" fill=\"\(se.colour)\"/>"
            s += "<text x=\"\(n(left + pw - 140))\" y=\"\(n(ly))\" class=\"tick\">\(escape(se.label))</text>"
        }
        return s + "</svg>"
    }
}
