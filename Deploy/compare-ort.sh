#!/usr/bin/env bash
# Runs ONNX Runtime's static quantization (quantize_static: QDQ, per-channel QInt8 weights,
# MatMul/Gemm/Conv only; MinMax, Percentile 99.999, Entropy at 128 and 2048 bins, Percentile +
# reduce_range, with QInt8 and QUInt8 activations) and vitq's recipes on the same ViT-Tiny, the
# same 32 calibration images (0..31) and the same 468 evaluation images (32..499), and prints
# top-1, agreement with each engine's FP32 top-1, the drop and the calibration time side by side.
# Not part of the test command. Takes several minutes on 2 cores (Entropy at 2048 bins alone
# spends about 4 minutes in onnxruntime's Python KL search).
#
# Usage: bash Deploy/compare-ort.sh [RECIPE ...] [--json OUT] [--no-quint8] [--skip-vitq] [--skip-ort]
#   RECIPE: vitq recipe names or paths (default: minmax-w8a8, then whichever of wu-w8a8,
#           ablation/wu-w8a8-percentile-99.99, ablation/wu-w8a8-entropy, ablation/wu-w8a8-mse
#           exist under Config/recipes; missing ones are skipped with a line saying so).
#   --json OUT: also write the rows (and the versions) as JSON.
#   All options: python3 Deploy/compare_ort.py --help.
# Reads the fixtures from ../shared/fixtures (or $VITQ_FIXTURES); uses .build/release/vitq
# (running Deploy/setup.sh first when it is missing). Installs the Python packages it needs from
# PyPI when they are not importable (torch from PyPI is a large download). $PYTHON picks the
# interpreter (default python3). Temporary files live in one mktemp directory removed at exit.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"

"$python" -c "import onnx, onnxruntime, torch, timm, safetensors, numpy" 2>/dev/null ||
  "$python" -m pip install -q onnx onnxruntime torch timm safetensors numpy

work="$(mktemp -d "${TMPDIR:-/tmp}/compare-ort.XXXXXX")"
trap 'rm -rf "$work"' EXIT
TMPDIR="$work" "$python" "$here/compare_ort.py" --work-dir "$work" "$@"
