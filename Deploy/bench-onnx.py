#!/usr/bin/env python3
"""vitq's engine against ONNX Runtime on the same quantized model, in one run: the model's
`vitq export --format integer` and `--format qdq` graphs in ORT (CPU provider) beside
`vitq eval` (its integer engine), each over the same images at batch 1, 8 and 32 with 2 threads,
in interleaved rounds. Every figure is images per second including the uint8 normalisation.

usage: bench-onnx.py Q.safetensors --data IMAGES.npy [--images 64] [--rounds 2] [--vitq PATH]
Prints one JSON object: the CPU flags, the versions, and a row per (round, batch, engine).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort


def cpu_flags():
    try:
        flags = open("/proc/cpuinfo").read().split()
    except OSError:
        return []
    return sorted({f for f in flags if f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni")})


def ort_speed(path, images, batch, mean, std, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def run(lo, hi):
        x = np.transpose(images[lo:hi], (0, 3, 1, 2)).astype(np.float32)
        x = (x / np.float32(255) - mean) / std
        session.run(["logits"], {"pixel_values": x})

    run(0, batch)  # warm-up
    start = time.perf_counter()
    for lo in range(0, len(images), batch):
        run(lo, min(lo + batch, len(images)))
    return len(images) / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--data", required=True)
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--vitq", default=os.path.join(os.path.dirname(__file__), "..", ".build", "release", "vitq"))
    a = p.parse_args()
    images = np.load(a.data, mmap_mode="r")
    if a.images < 32 or a.images > len(images):
        sys.exit(f"--images {a.images}: between 32 and the {len(images)} images of {a.data}")
    images = np.asarray(images[:a.images])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        graphs = {}
        for fmt in ("integer", "qdq"):
            graphs[fmt] = os.path.join(tmp, fmt + ".onnx")
            subprocess.run([a.vitq, "export", a.model, "--format", fmt, "--out", graphs[fmt], "--json"], check=True, stdout=subprocess.DEVNULL)
        meta = {e.key: e.value for e in onnx.load(graphs["integer"]).metadata_props}
        mean = np.array(meta["preprocess_mean"].split(","), np.float32)[None, :, None, None]
        std = np.array(meta["preprocess_std"].split(","), np.float32)[None, :, None, None]
        for r in range(a.rounds):
            for batch in (1, 8, 32):
                out = subprocess.run([a.vitq, "eval", a.model, "--data", a.data, "--limit", str(a.images), "--batch", str(batch),
                                      "--threads", str(a.threads), "--json"], check=True, capture_output=True, text=True).stdout
                rows.append({"round": r, "batch": batch, "engine": "vitq integer", "images_per_second": json.loads(out)["images_per_second"]})
                for fmt in ("integer", "qdq"):
                    rows.append({"round": r, "batch": batch, "engine": "onnxruntime " + fmt,
                                 "images_per_second": ort_speed(graphs[fmt], images, batch, mean, std, a.threads)})
    print(json.dumps({"model": a.model, "cpu_flags": cpu_flags(), "onnxruntime": ort.__version__, "threads": a.threads,
                      "images": a.images, "rows": rows}, sort_keys=True))


if __name__ == "__main__":
    main()
