#!/usr/bin/env python3
"""Runs a `vitq export` model in ONNX Runtime on a uint8 NHWC .npy of images already at the
input size, normalised as vitq normalises them ((u8 / 255 - mean) / std in float32, mean and std
from the model's metadata), and checks the model with onnx.checker (full_check).

usage: onnx-run.py MODEL.onnx --data IMAGES.npy [--offset K] [--limit N] [--batch B] [--threads T]
                   [--out LOGITS.npy] [--reference VITQ_LOGITS.npy] [--labels LABELS.npy]
Prints one JSON object: the checker's verdict, and with --reference the largest relative
difference max|a - b| / max|b| per image, the top-1 agreement with the reference, and with
--labels the top-1 accuracy.
"""
import argparse
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("--data", required=True)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--limit", type=int)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out")
    p.add_argument("--reference")
    p.add_argument("--labels")
    a = p.parse_args()

    model = onnx.load(a.model)
    onnx.checker.check_model(model, full_check=True)
    meta = {e.key: e.value for e in model.metadata_props}
    mean = np.array([float(v) for v in meta["preprocess_mean"].split(",")], dtype=np.float32)
    std = np.array([float(v) for v in meta["preprocess_std"].split(",")], dtype=np.float32)
    images = np.load(a.data, mmap_mode="r")
    end = len(images) if a.limit is None else a.offset + a.limit
    if a.offset < 0 or end > len(images) or end <= a.offset:
        sys.exit(f"{a.data}: rows {a.offset}..<{end} are not in its {len(images)} images")
    size = int(meta["input_size"])
    if images.shape[1:] != (size, size, 3):
        sys.exit(f"{a.data}: images of shape {images.shape[1:]}, the model takes {size}x{size}x3")

    options = ort.SessionOptions()
    options.intra_op_num_threads = a.threads
    session = ort.InferenceSession(a.model, options, providers=["CPUExecutionProvider"])
    logits = []
    for lo in range(a.offset, end, a.batch):
        u8 = np.asarray(images[lo:min(lo + a.batch, end)])
        x = np.transpose(u8, (0, 3, 1, 2)).astype(np.float32)
        x = (x / np.float32(255) - mean[None, :, None, None]) / std[None, :, None, None]
        logits.append(session.run(["logits"], {"pixel_values": x.astype(np.float32)})[0])
    logits = np.concatenate(logits)
    if a.out:
        np.save(a.out, logits)
    report = {"checker": "passed", "images": int(len(logits)), "metadata": meta}
    if a.reference:
        ref = np.load(a.reference).astype(np.float32)
        if ref.shape != logits.shape:
            sys.exit(f"{a.reference}: logits of shape {ref.shape}, ONNX Runtime gave {logits.shape}")
        rel = np.abs(logits - ref).max(axis=1) / np.abs(ref).max(axis=1)
        report["max_relative_difference"] = float(rel.max())
        report["median_relative_difference"] = float(np.median(rel))
        report["images_over_1e-5"] = int((rel > 1e-5).sum())
        report["top1_agreement"] = float((logits.argmax(1) == ref.argmax(1)).mean())
    if a.labels:
        labels = np.load(a.labels)[a.offset:end]
        report["top1"] = float((logits.argmax(1) == labels).mean())
    print(json.dumps(report, sort_keys=True))


if __name__ == "__main__":
    main()
