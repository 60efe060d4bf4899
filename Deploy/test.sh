#!/usr/bin/env bash
# Sets everything up (Debian packages, release build) and runs all tests in release mode.
# Tests read the fixtures from ../shared/fixtures (or $VITQ_FIXTURES).
# Usage: bash Deploy/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash Deploy/setup.sh
swift test -c release --disable-swift-testing
