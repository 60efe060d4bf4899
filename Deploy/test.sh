#!/usr/bin/env bash
# Sets everything up (Debian packages, release build) and runs all tests in release mode, then
# the multi-host calibration in network namespaces (Deploy/netns-cluster.sh) and as a job on a
# one-machine Slurm cluster (Deploy/slurm/local-cluster.sh) where they can run.
# Tests read the fixtures from ../shared/fixtures (or $VITQ_FIXTURES).
# Usage: bash Deploy/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash Deploy/setup.sh
# One test opens a quantized file with Python's safetensors (the format must stay readable there);
# the image-decoding tests make their PNG/JPEG inputs and references with Pillow at test time.
python3 -c "import safetensors, numpy, PIL" 2>/dev/null || python3 -m pip install -q safetensors numpy pillow
# The ONNX export tests run the exported models in ONNX Runtime and through onnx.checker.
python3 -c "import onnx, onnxruntime" 2>/dev/null || python3 -m pip install -q onnx==1.23.2 onnxruntime==1.32.0
# Package.swift declares every module a target imports, and nothing it does not.
bash Deploy/check-imports.sh
swift test -c release --disable-swift-testing
# 3 worker hosts and a coordinator host, each its own network namespace: the output must equal
# the in-process run's. Exit 2 from --check means namespaces cannot be made here (not root, no
# CAP_NET_ADMIN); then the README says how to run it by hand.
status=0
bash Deploy/netns-cluster.sh --check || status=$?
if [ "$status" -eq 0 ]; then
  bash Deploy/netns-cluster.sh --workers 3
elif [ "$status" -eq 2 ]; then
  echo "netns-cluster: skipped, network namespaces cannot be made on this machine (see README: 'Several machines')"
else
  exit "$status"
fi
# A real Slurm cluster on this machine (munged, slurmctld and 3 emulated slurmd nodes from
# Debian's packages) runs Deploy/slurm/calibrate.sbatch: its output must equal the in-process
# run's. Exit 2 means it cannot run here (not root, or the packages do not install).
status=0
bash Deploy/slurm/local-cluster.sh || status=$?
if [ "$status" -eq 2 ]; then
  echo "local-cluster: skipped, no Slurm cluster can be brought up on this machine (see Docs/DEPLOY.md: 'Slurm in CI')"
elif [ "$status" -ne 0 ]; then
  exit "$status"
fi
