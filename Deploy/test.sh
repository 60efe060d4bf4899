#!/usr/bin/env bash
# Sets everything up (Debian packages, release build) and runs all tests in release mode.
# Tests read the fixtures from ../shared/fixtures (or $VITQ_FIXTURES).
# Usage: bash Deploy/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash Deploy/setup.sh
# One test opens a quantized file with Python's safetensors (the format must stay readable there).
python3 -c "import safetensors, numpy" 2>/dev/null || python3 -m pip install -q safetensors numpy
swift test -c release --disable-swift-testing
