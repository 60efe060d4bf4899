#!/usr/bin/env python3
"""Writes the charts of a `vitq report` page as standalone SVG files (for Docs/BENCHMARKS.md).

usage: extract-report-charts.py REPORT.html PREFIX
writes PREFIX-pareto.svg and, when the page has measured runs, PREFIX-accuracy.svg.
"""
import re
import sys

STYLE = ("<style>text { font: 12px system-ui, sans-serif; } .title { font-size: 14px; font-weight: 600; }"
         " .tick { font-size: 11px; fill: #444; }</style>")
NAMES = {"Pareto frontier of (size, Ω)": "pareto", "Measured accuracy against size": "accuracy"}


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip())
    page, prefix = sys.argv[1], sys.argv[2]
    html = open(page, encoding="utf-8").read()
    found = 0
    for m in re.finditer(r'<svg class="chart"([^>]*)aria-label="([^"]*)">(.*?)</svg>', html, re.S):
        name = NAMES.get(m.group(2))
        if name is None:
            continue
        svg = f'<svg xmlns="http://www.w3.org/2000/svg"{m.group(1)}aria-label="{m.group(2)}">{STYLE}{m.group(3)}</svg>\n'
        with open(f"{prefix}-{name}.svg", "w", encoding="utf-8") as f:
            f.write(svg)
        found += 1
    if found == 0:
        sys.exit(f"{page}: no Pareto or accuracy chart (is it a mixed-precision report?)")


if __name__ == "__main__":
    main()
