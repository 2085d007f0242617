"""Calibration + quantization time of ours and of ModelOpt on one export's FP32 graph, same frames and method,
and what ONNX Runtime's WeightBiasQuantization pass does to the ModelOpt graph's agreement with FP32.

Usage: python benchmarks/modelopt_calib_time.py EXPORT_DIR CALIBRATION_SET MODELOPT_PYTHON [DATA_YAML]
(EXPORT_DIR holds model.onnx and, for the second figure, the model.int8.onnx ModelOpt wrote)."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from segdeploy.artifacts.metadata import read_onnx_metadata
from segdeploy.data.calibration import load_calibration_set
from segdeploy.data.dataset import SegmentationSplit
from segdeploy.data.spec import load_dataset_spec
from segdeploy.meta import normalize
from segdeploy.quantize.int8 import FrameFeed, prepare, quantize
from segdeploy.quantize.modelopt import ModelOpt


def main(export: Path, calib: Path, python: Path, data: Path | None) -> None:
    fp32 = export / "model.onnx"
    model = onnx.load(str(fp32), load_external_data=False)
    meta, _ = read_onnx_metadata({p.key: p.value for p in model.metadata_props}, fp32)
    calibration = load_calibration_set(calib)
    feed = FrameFeed(calibration, meta, model.graph.input[0].name)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        start = time.perf_counter()
        prepare(fp32, work / "prepared.onnx")
        prepared = time.perf_counter() - start
        start = time.perf_counter()
        quantize(work / "prepared.onnx", work / "ours.onnx", feed, "entropy", work / "ranges.json")
        ours = time.perf_counter() - start
        modelopt = ModelOpt.find(python)
        start = time.perf_counter()
        modelopt.quantize(work / "prepared.onnx", work / "modelopt.onnx", feed, "entropy", [])
        theirs = time.perf_counter() - start
    print(
        f"prepare {prepared:.1f} s; ours quantize (entropy, {len(feed.frames)} frames) {ours:.1f} s; "
        f"ModelOpt {modelopt.version} quantize incl. interpreter start {theirs:.1f} s"
    )
    int8 = export / "model.int8.onnx"
    if data is None or not int8.exists():
        return
    ort.set_default_logger_severity(3)
    split = SegmentationSplit(load_dataset_spec(data), "val")
    sessions = {
        "fp32": ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"]),
        "int8 ORT default": ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"]),
        "int8 no WeightBiasQuantization": ort.InferenceSession(
            str(int8), providers=["CPUExecutionProvider"], disabled_optimizers=["WeightBiasQuantization"]
        ),
    }
    labels: dict[str, list[np.ndarray]] = {k: [] for k in sessions}
    for image, _ in split:
        x = normalize(image[None], calibration.mean, calibration.std)
        for name, session in sessions.items():
            labels[name].append(session.run(None, {feed.input_name: x})[0].argmax(1))
    reference = np.concatenate(labels["fp32"])
    for name in list(sessions)[1:]:
        print(
            f"{int8.name} on {len(split)} val images, {name}: pixel agreement with FP32 "
            f"{100 * float((np.concatenate(labels[name]) == reference).mean()):.4f}%"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]) if len(sys.argv) > 4 else None)
