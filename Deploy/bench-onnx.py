#!/usr/bin/env python3
"""vitq's engine against ONNX Runtime on the same quantized model, in one run: the model's
`vitq export --format integer` and `--format qdq` graphs in ORT (CPU provider) beside
`vitq eval` (its integer engine, at the best kernel level of this CPU, capped at AVX-VNNI with
VITQ_ISA=avxvnni on a CPU that has it beside AVX-512 VNNI, and capped at AVX2 with VITQ_ISA=avx2), each over the same images at batch 1, 8 and 32 with 2 threads, in interleaved
rounds. With --float (the float model the quantized file came from) also: vitq's fp32 engine,
ORT on vitq's fp32 export, and ORT's own int8 model of that export (quantize_static: QDQ,
per-channel int8 weights, MatMul only, MinMax on the first 32 images), the anchor a user would
pick instead. Every figure is images per second including the uint8 normalisation.

usage: bench-onnx.py Q.safetensors --data IMAGES.npy [--float MODEL] [--images 64] [--rounds 2] [--vitq PATH]
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
    return sorted({f for f in flags if f in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni")})


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


class Images:
    """The first 32 images, normalised, one at a time: quantize_static's calibration reader."""

    def __init__(self, images, mean, std):
        self.batches = iter([((np.transpose(images[i:i + 1], (0, 3, 1, 2)).astype(np.float32) / np.float32(255) - mean) / std).astype(np.float32)
                             for i in range(32)])

    def get_next(self):
        x = next(self.batches, None)
        return None if x is None else {"pixel_values": x}


def ort_int8(fp32_path, out_path, images, mean, std):
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    pre = out_path + ".pre.onnx"
    quant_pre_process(fp32_path, pre)
    quantize_static(pre, out_path, Images(images, mean, std), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                    calibrate_method=CalibrationMethod.MinMax)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--data", required=True)
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--float", dest="float_model")
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
        if a.float_model:
            graphs["fp32"] = os.path.join(tmp, "fp32.onnx")
            subprocess.run([a.vitq, "export", a.float_model, "--out", graphs["fp32"], "--json"], check=True, stdout=subprocess.DEVNULL)
            graphs["quantize_static int8"] = os.path.join(tmp, "ort_int8.onnx")
            ort_int8(graphs["fp32"], graphs["quantize_static int8"], images, mean, std)

        def vitq_speed(model, batch, env=None):
            out = subprocess.run([a.vitq, "eval", model, "--data", a.data, "--limit", str(a.images), "--batch", str(batch),
                                  "--threads", str(a.threads), "--json"], check=True, capture_output=True, text=True,
                                 env=dict(os.environ, **(env or {}))).stdout
            return json.loads(out)["images_per_second"]

        for r in range(a.rounds):
            for batch in (1, 8, 32):
                def row(engine, speed):
                    rows.append({"round": r, "batch": batch, "engine": engine, "images_per_second": speed})
                row("vitq integer", vitq_speed(a.model, batch))
                if "avx_vnni" in cpu_flags() and "avx512_vnni" in cpu_flags():
                    row("vitq integer, VITQ_ISA=avxvnni", vitq_speed(a.model, batch, {"VITQ_ISA": "avxvnni"}))
                row("vitq integer, VITQ_ISA=avx2", vitq_speed(a.model, batch, {"VITQ_ISA": "avx2"}))
                if a.float_model:
                    row("vitq fp32", vitq_speed(a.float_model, batch))
                for fmt, path in graphs.items():
                    row("onnxruntime " + fmt, ort_speed(path, images, batch, mean, std, a.threads))
    kernels = json.loads(subprocess.run([a.vitq, "version", "--json"], check=True, capture_output=True, text=True).stdout)["kernels"]
    print(json.dumps({"model": a.model, "float_model": a.float_model, "cpu_flags": cpu_flags(), "vitq_kernels": kernels, "onnxruntime": ort.__version__, "threads": a.threads,
                      "images": a.images, "rows": rows}, sort_keys=True))


if __name__ == "__main__":
    main()
