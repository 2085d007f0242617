"""When TensorRT's INT8 calibration cache may be reused. A cache holds per-tensor scales for one network,
computed from one calibration set by one method at one batch size by one TensorRT version; change any
of these and the scales are wrong (TensorRT checks only its own version string, and only roughly). The
key beside the cache (`<cache>.key.json`) records all of them; the cache is reused only on a match."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..data.calibration import CalibrationSet
from ..errors import SegdeployError
from ..files import read_json, sha256_of, write_json

METHOD = "entropy2"  # IInt8EntropyCalibrator2, the calibrator TensorRT and trtexec use for CNNs


def cache_path(calibration: Path, onnx_path: Path) -> Path:
    """Under the calibration set, one cache per graph."""
    return calibration / f"tensorrt-{METHOD}-{sha256_of(onnx_path)[:12]}.cache"


def key_path(cache: Path) -> Path:
    return cache.with_name(cache.name + ".key.json")


def calibration_key(onnx_path: Path, calibration: CalibrationSet, batch: int, tensorrt: str) -> dict[str, Any]:
    images = {
        "dataset": str(calibration.dataset),
        "split": calibration.split,
        "ids": calibration.ids,
        "size": list(calibration.size),
    }
    return {
        "onnx_sha256": sha256_of(onnx_path),
        "calibration_set": hashlib.sha256(json.dumps(images, sort_keys=True).encode()).hexdigest(),
        "method": METHOD,
        "batch": batch,
        "tensorrt": tensorrt,
    }


def reusable(cache: Path, key: dict[str, Any]) -> bool:
    """True only when the cache exists and its key file records exactly `key`."""
    keyed = key_path(cache)
    if not (cache.is_file() and keyed.is_file()):
        return False
    try:
        return bool(read_json(keyed) == key)
    except SegdeployError:  # an unreadable key: calibrate again and rewrite it
        return False


def write_key(cache: Path, key: dict[str, Any]) -> None:
    write_json(key_path(cache), key)
