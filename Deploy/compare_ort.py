#!/usr/bin/env python3
"""Compare ONNX Runtime's static quantization with vitq on the same ViT, images and protocol.

Usage (normally through Deploy/compare-ort.sh, which installs the Python packages first):
  python3 Deploy/compare_ort.py [RECIPE ...] [--json OUT] [--no-quint8] [--skip-vitq] [--skip-ort]

Protocol (the one vitq's accuracy numbers use): calibrate on images [calib-offset, calib-offset +
calib), evaluate on every image from eval-offset on. Top-1 is against the labels; agreement is the
fraction of images whose int8 top-1 equals the FP32 model's top-1 (ORT: the FP32 ONNX model; vitq:
its own FP32 forward); drop = FP32 top-1 - int8 top-1 in points.

ORT side: the timm model exported to ONNX (opset 17, dynamic batch), then quantize_static in QDQ
format, per-channel int8 weights, only MatMul/Gemm/Conv quantized, with MinMax, Percentile
(99.999), Entropy at its default 128 bins and at 2048 bins, and Percentile with reduce_range.
Each calibration method collects its ranges once with onnxruntime's own create_calibrator (called
exactly as quantize_static calls it); the ranges go to a calibration cache that quantize_static
then reads. quantize_static maps no extra option to the histogram calibrators' num_bins (only
CalibTensorRangeSymmetric, CalibMovingAverage(Constant), CalibMaxIntermediateOutputs and
CalibPercentile), so the cache is the only way to give Entropy 2048 bins through the public API;
it also lets the QUInt8-activation variants reuse the same ranges. "calib s" is the calibration
time of the method plus that variant's quantize_static time.

vitq side: `vitq quantize ... --json` per recipe; its JSON gives top1, agreement, drop_points
and seconds (calibration and writing the file).
"""

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_RECIPES = [
    "minmax-w8a8",
    "wu-w8a8",
    "ablation/wu-w8a8-percentile-99.99",
    "ablation/wu-w8a8-entropy",
    "ablation/wu-w8a8-mse",
]
OP_TYPES = ["MatMul", "Gemm", "Conv"]


@dataclass
class Row:
    """One line of the comparison table."""

    engine: str
    variant: str
    activations: str
    weights: str
    images: int
    top1_correct: int
    top1: float
    agreement_count: int
    agreement: float
    fp32_top1: float
    drop_points: float
    calib_seconds: float | None
    notes: str = ""


@dataclass
class OrtVariant:
    """One quantize_static configuration."""

    name: str
    method: str  # key into the calibration table built by calibrate_all
    activation: str  # "QInt8" or "QUInt8"
    reduce_range: bool = False


@dataclass
class Calibration:
    """The ranges one calibration method produced, as an onnxruntime calibration cache."""

    method_name: str
    cache: Path
    seconds: float
    ranges: object  # onnxruntime.quantization.calibrate.TensorsData
    extra: dict = field(default_factory=dict)


def parse_args():
    fixtures = Path(os.environ.get("VITQ_FIXTURES", REPO.parent / "shared" / "fixtures"))
    sample = fixtures / "imagenet_sample"
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("recipes", nargs="*", help="vitq recipes (names or paths); default: %s" % ", ".join(DEFAULT_RECIPES))
    p.add_argument("--model", type=Path, default=fixtures / "vit_tiny_patch16_224.augreg_in21k_ft_in1k.safetensors")
    p.add_argument("--arch", default="vit_tiny_patch16_224", help="timm model name for the safetensors file")
    p.add_argument("--images", type=Path, default=sample / "even500_images_u8_nhwc.npy",
                   help="uint8 [N,224,224,3] NHWC RGB, already resized and centre-cropped")
    p.add_argument("--labels", type=Path, default=sample / "even500_labels.npy")
    p.add_argument("--calib-offset", type=int, default=0)
    p.add_argument("--calib", type=int, default=32)
    p.add_argument("--eval-offset", type=int, default=32)
    p.add_argument("--batch", type=int, default=32, help="images per ONNX Runtime evaluation run")
    p.add_argument("--threads", type=int, default=0, help="ORT intra-op threads (0: ORT's default)")
    p.add_argument("--vitq", type=Path, default=REPO / ".build" / "release" / "vitq")
    p.add_argument("--json", dest="json_out", type=Path, help="also write the rows as JSON here")
    p.add_argument("--no-quint8", action="store_true", help="skip the QUInt8-activation ORT variants")
    p.add_argument("--skip-vitq", action="store_true")
    p.add_argument("--skip-ort", action="store_true")
    p.add_argument("--work-dir", type=Path, help="temporary files (default: a fresh temporary directory)")
    return p.parse_args()


def log(msg):
    print(f"[compare-ort] {msg}", file=sys.stderr, flush=True)


def preprocess(u8_nhwc):
    """x/255, then (x - 0.5)/0.5 (timm's augreg ViT normalisation), NHWC uint8 -> NCHW float32."""
    x = u8_nhwc.astype(np.float32) / 255.0
    x = (x - 0.5) / 0.5
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def export_onnx(model_path, arch, onnx_path):
    import timm
    import torch
    from safetensors.torch import load_file

    model = timm.create_model(arch, pretrained=False)
    model.load_state_dict(load_file(str(model_path)), strict=True)
    model.eval()
    dummy = torch.zeros(1, 3, 224, 224)
    with torch.no_grad():
        torch.onnx.export(
            model, (dummy,), str(onnx_path), opset_version=17, input_names=["input"], output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False,
        )
    return torch.__version__, timm.__version__


def session(path, threads):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads > 0:
        opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def predict(path, x, batch, threads):
    sess = session(path, threads)
    name = sess.get_inputs()[0].name
    preds = [np.argmax(sess.run(None, {name: x[i:i + batch]})[0], axis=1) for i in range(0, len(x), batch)]
    return np.concatenate(preds)


def make_reader(calib_x):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        """One calibration image per inference run, as onnxruntime's examples feed them."""

        def __init__(self):
            self.items = iter([{"input": calib_x[i:i + 1]} for i in range(len(calib_x))])

        def get_next(self):
            return next(self.items, None)

    return Reader()


def calibrate_all(fp32_onnx, calib_x, work):
    """Ranges per calibration method, computed the way quantize_static computes them."""
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

    methods = {
        "minmax": ("MinMax", CalibrationMethod.MinMax, {}),
        "percentile": ("Percentile", CalibrationMethod.Percentile, {}),
        "entropy": ("Entropy", CalibrationMethod.Entropy, {}),
        "entropy-2048": ("Entropy", CalibrationMethod.Entropy, {"num_bins": 2048}),
    }
    out = {}
    for key, (name, method, extra) in methods.items():
        log(f"ORT calibration: {key} {extra or '(defaults)'}")
        start = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):  # the calibrators print their progress
            calibrator = create_calibrator(
                Path(fp32_onnx), OP_TYPES, augmented_model_path=str(work / f"augmented-{key}.onnx"),
                calibrate_method=method, extra_options=extra,
            )
            calibrator.collect_data(make_reader(calib_x))
            ranges = calibrator.compute_data()
        del calibrator
        seconds = time.perf_counter() - start
        cache = work / f"calib-{key}.json"
        save_tensors_data(ranges, cache)
        out[key] = Calibration(name, cache, seconds, ranges, extra)
    return out


def equal_ranges(a, b):
    """How many of a's tensors have exactly b's (lowest, highest), and how many a has. MinMax keeps
    its bounds as shape-[1] arrays, the histogram calibrators as scalars: compare the values."""
    same = sum(1 for k in a.keys() if k in b and all(
        np.array_equal(np.ravel(x), np.ravel(y)) for x, y in zip(a[k].range_value, b[k].range_value)))
    return same, len(a.keys())


def ort_variants(with_quint8):
    variants = [
        OrtVariant("MinMax", "minmax", "QInt8"),
        OrtVariant("Percentile 99.999", "percentile", "QInt8"),
        OrtVariant("Entropy (128 bins)", "entropy", "QInt8"),
        OrtVariant("Entropy (2048 bins)", "entropy-2048", "QInt8"),
        OrtVariant("Percentile 99.999 + reduce_range", "percentile", "QInt8", reduce_range=True),
    ]
    if with_quint8:
        variants += [
            OrtVariant(v.name, v.method, "QUInt8", v.reduce_range)
            for v in variants if v.method != "entropy-2048"
        ]
    return variants


def ort_rows(args, fp32_onnx, calib_x, eval_x, eval_y, work):
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    log(f"ORT FP32 evaluation on {len(eval_x)} images")
    fp32_pred = predict(fp32_onnx, eval_x, args.batch, args.threads)
    fp32_top1 = float(np.mean(fp32_pred == eval_y))
    n = len(eval_y)
    rows = [Row("onnxruntime", "FP32 (ONNX)", "fp32", "fp32", n, int(np.sum(fp32_pred == eval_y)), fp32_top1,
                n, 1.0, fp32_top1, 0.0, None)]
    calibrations = calibrate_all(fp32_onnx, calib_x, work)
    notes = {}
    for key in ("entropy", "entropy-2048"):
        same, total = equal_ranges(calibrations[key].ranges, calibrations["minmax"].ranges)
        notes[key] = f"ranges equal MinMax's on {same} of {total} tensors"
    for i, v in enumerate(ort_variants(not args.no_quint8)):
        cal = calibrations[v.method]
        out = work / f"ort-{i}.onnx"
        log(f"ORT quantize_static + evaluation: {v.name}, activations {v.activation}")
        start = time.perf_counter()
        with contextlib.redirect_stdout(sys.stderr):
            quantize_static(
                str(fp32_onnx), str(out), calibration_data_reader=None, quant_format=QuantFormat.QDQ,
                op_types_to_quantize=OP_TYPES, per_channel=True, reduce_range=v.reduce_range,
                activation_type=getattr(QuantType, v.activation), weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod[cal.method_name],
                calibration_cache_path=str(cal.cache),
            )
        seconds = cal.seconds + time.perf_counter() - start
        pred = predict(out, eval_x, args.batch, args.threads)
        correct = int(np.sum(pred == eval_y))
        agree = int(np.sum(pred == fp32_pred))
        weights = "QInt8 per-channel" + (" (7-bit, reduce_range)" if v.reduce_range else "")
        rows.append(Row("onnxruntime", v.name, v.activation, weights, n, correct, correct / n, agree, agree / n,
                        fp32_top1, 100.0 * (fp32_top1 - correct / n), seconds, notes.get(v.method, "")))
        out.unlink()
    return rows


def resolve_recipe(recipe):
    """A recipe file path, or None when neither the path nor Config/recipes/NAME.yaml exists."""
    for candidate in (Path(recipe), REPO / "Config" / "recipes" / f"{recipe}.yaml"):
        if candidate.is_file():
            return candidate
    return None


def vitq_rows(args, recipes, work):
    if not args.vitq.is_file():
        log(f"{args.vitq} is missing: running Deploy/setup.sh")
        subprocess.run(["bash", str(REPO / "Deploy" / "setup.sh")], check=True)
    rows = []
    fp32_row = None
    for recipe in recipes:
        path = resolve_recipe(recipe)
        if path is None:
            print(f"vitq: skipping recipe {recipe}: neither a file nor Config/recipes/{recipe}.yaml")
            continue
        out = work / ("compare-ort-" + recipe.replace("/", "-") + ".safetensors")
        cmd = [str(args.vitq), "quantize", str(args.model), "--data", str(args.images), "--labels", str(args.labels),
               "--calib-offset", str(args.calib_offset), "--calib", str(args.calib), "--recipe", str(path),
               "--out", str(out), "--eval-offset", str(args.eval_offset), "--json"]
        log("vitq: " + " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stderr)
            raise SystemExit(f"vitq quantize failed for recipe {recipe} (exit {proc.returncode})")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        n = int(r["eval_images"])
        if fp32_row is None:
            fp32_row = Row("vitq", "FP32 (vitq forward)", "fp32", "fp32", n, round(r["fp32_top1"] * n), r["fp32_top1"],
                           n, 1.0, r["fp32_top1"], 0.0, None)
            rows.append(fp32_row)
        rows.append(Row("vitq", recipe, "int8 (recipe)", "int8 (recipe)", n, round(r["top1"] * n), r["top1"],
                        round(r["agreement"] * n), r["agreement"], r["fp32_top1"], r["drop_points"], r["seconds"]))
        out.unlink(missing_ok=True)
    return rows


def print_table(rows):
    print("| engine | variant | activations | top-1 | agreement | drop (pts) | calib s | notes |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        seconds = "-" if r.calib_seconds is None else f"{r.calib_seconds:.1f}"
        print(f"| {r.engine} | {r.variant} | {r.activations} | {100 * r.top1:.1f}% ({r.top1_correct}/{r.images}) "
              f"| {100 * r.agreement:.1f}% ({r.agreement_count}/{r.images}) | {r.drop_points:.1f} "
              f"| {seconds} | {r.notes} |")


def cpu_flags():
    """Which of the int8-relevant x86 flags /proc/cpuinfo lists."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []
    flags = {f for line in lines if line.startswith("flags") for f in line.split(":", 1)[1].split()}
    return sorted(flags & {"avx2", "avx512_vnni", "avx_vnni", "avx512f"})


def main():
    args = parse_args()
    images = np.load(args.images, mmap_mode="r")
    labels = np.load(args.labels)
    calib_x = preprocess(np.asarray(images[args.calib_offset:args.calib_offset + args.calib]))
    eval_x = preprocess(np.asarray(images[args.eval_offset:]))
    eval_y = labels[args.eval_offset:].astype(np.int64)
    recipes = args.recipes or DEFAULT_RECIPES
    info = {"calib_offset": args.calib_offset, "calib": len(calib_x), "eval_offset": args.eval_offset,
            "eval_images": len(eval_y), "cpu_flags": cpu_flags()}
    rows = []
    scratch = contextlib.nullcontext(None) if args.work_dir else tempfile.TemporaryDirectory(prefix="compare-ort.")
    with scratch as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        if not args.skip_ort:
            import onnx
            import onnxruntime

            fp32_onnx = work / "model-fp32.onnx"
            log(f"exporting {args.model} to ONNX (opset 17)")
            info["torch"], info["timm"] = export_onnx(args.model, args.arch, fp32_onnx)
            info["onnxruntime"], info["onnx"] = onnxruntime.__version__, onnx.__version__
            rows += ort_rows(args, fp32_onnx, calib_x, eval_x, eval_y, work)
        if not args.skip_vitq:
            rows += vitq_rows(args, recipes, work)
    versions = ", ".join(f"{k} {info[k]}" for k in ("onnxruntime", "onnx", "torch", "timm") if k in info)
    print(f"\n{versions}; CPU flags: {' '.join(info['cpu_flags']) or 'none of avx2/avx512f/avx512_vnni/avx_vnni'}")
    print(f"calibration images {args.calib_offset}..{args.calib_offset + len(calib_x) - 1}, "
          f"evaluation images {args.eval_offset}..{args.eval_offset + len(eval_y) - 1} ({len(eval_y)})")
    print("ORT: quantize_static, QDQ, per_channel=True, weights QInt8, op_types_to_quantize=MatMul/Gemm/Conv\n")
    print_table(rows)
    if args.json_out:
        args.json_out.write_text(json.dumps({"info": info, "rows": [asdict(r) for r in rows]}, indent=2) + "\n")


if __name__ == "__main__":
    main()
