"""The INT8 accuracy guard: measure the mIoU drop, rank layers by harm, keep the worst in float."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ..artifacts.metadata import stamp_metadata
from ..backends import open_backend
from ..data.calibration import CalibrationSet
from ..data.dataset import SegmentationSplit
from ..errors import SegdeployError
from ..evaluate import evaluate
from ..files import atomic_path
from ..meta import ModelMeta
from ..precision_table import FP32, INT8
from .int8 import FrameFeed, prepare, quantize, quantized_node_names, rule_violations, scratch_dir

# Another quantizer (precision/modelopt.py): prepared graph, target, calibration frames, nodes kept in float.
Requantize = Callable[[Path, Path, FrameFeed, list[str]], None]


@dataclass(frozen=True)
class LayerSensitivity:
    """Harm done by quantizing one node alone, on the probe images: relative logit noise power
    (|int8 - fp32|^2 / |fp32|^2) for logits graphs, the fraction of flipped labels for argmax graphs."""

    node: str
    op_type: str
    error: float


@dataclass
class Int8Result:
    method: str
    fp32_miou: float
    int8_miou: float
    max_drop: float
    excluded: list[str] = field(default_factory=list)
    ranking: list[LayerSensitivity] = field(default_factory=list)
    attempts: list[dict[str, Any]] = field(default_factory=list)
    fp16_remainder_miou: float | None = None  # model.int8-fp16.onnx's val mIoU, once written
    cpu: Int8Result | None = None  # model.int8-cpu.onnx's own guard, once written

    @property
    def drop(self) -> float:
        return self.fp32_miou - self.int8_miou

    @property
    def worst_drop(self) -> float:
        """The largest drop of the INT8 graphs (FP32 and FP16 remainder, and the CPU graph once written)."""
        twin = self.fp32_miou - self.fp16_remainder_miou if self.fp16_remainder_miou is not None else self.drop
        return max(self.drop, twin, self.cpu.drop if self.cpu is not None else self.drop)

    @property
    def within(self) -> bool:
        return self.drop <= self.max_drop

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "fp32_miou": self.fp32_miou,
            "int8_miou": self.int8_miou,
            "miou_drop": self.drop,
            "fp16_remainder_miou": self.fp16_remainder_miou,
            "cpu_miou": None if self.cpu is None else self.cpu.int8_miou,
            "max_miou_drop": self.max_drop,
            "within_tolerance": self.worst_drop <= self.max_drop,  # every INT8 graph
            "kept_in_float": self.excluded,
            "attempts": self.attempts,
            "sensitivity_ranking": [asdict(r) for r in self.ranking],
        }


def _error(reference: np.ndarray, output: np.ndarray) -> float:
    if output.ndim == 4:
        return float(np.sum((output - reference) ** 2) / max(float(np.sum(reference**2)), 1e-12))
    return float(np.mean(output != reference))


def rank_layers(
    prepared: Path,
    meta: ModelMeta,
    feed: FrameFeed,
    method: str,
    cache: Path,
    work: Path,
    probe_images: int = 4,
    log: Callable[[str], None] = print,
) -> list[LayerSensitivity]:
    """Quantize one node at a time (activation ranges from the cache) and measure the output's harm."""
    probe = feed.frames[:probe_images]
    with open_backend(prepared) as reference:
        references = [reference.run(frames) for frames in probe]
    op_types = {n.name: n.op_type for n in onnx.load(str(prepared)).graph.node}
    candidates = quantized_node_names(prepared)
    log(f"sensitivity: quantizing each of {len(candidates)} nodes alone on {len(probe)} probe images")
    ranking = []
    single = work / "single.onnx"
    for node in candidates:
        quantize(prepared, single, feed, method, cache, only=[node])
        stamp_metadata(single, meta, INT8.name)
        with open_backend(single) as backend:
            error = float(np.mean([_error(ref, backend.run(frames)) for ref, frames in zip(references, probe)]))
        ranking.append(LayerSensitivity(node, op_types.get(node, "?"), error))
    return sorted(ranking, key=lambda r: r.error, reverse=True)


def guarded_int8(
    fp32: Path,
    target: Path,
    meta: ModelMeta,
    calibration: CalibrationSet,
    method: str,
    max_drop: float,
    val: SegmentationSplit,
    always_rank: bool = False,
    log: Callable[[str], None] = print,
    requantize: Requantize | None = None,
    frames: list[np.ndarray] | None = None,
) -> Int8Result:
    """Quantize `fp32` to `target` (with ours, or `requantize`); while the val mIoU drop exceeds `max_drop`,
    keep the most harmful nodes (by one-at-a-time sensitivity, measured with ours) in float, doubling their
    number each round. Our graph must follow the Q/DQ rules; another quantizer's breaches are only reported.
    `frames`: the calibration set's frames when already read (one reading per export)."""
    with scratch_dir() as scratch:
        work = Path(scratch)
        prepared, attempt, cache = work / "prepared.onnx", work / "attempt.onnx", work / "ranges.json"
        prepare(fp32, prepared)
        stamp_metadata(prepared, meta, FP32.name)
        input_name = onnx.load(str(prepared), load_external_data=False).graph.input[0].name
        feed = FrameFeed(calibration, meta, input_name, frames)
        with open_backend(fp32) as backend:
            fp32_miou = evaluate(backend, val).miou()

        def attempt_with(excluded: list[str]) -> float:
            if requantize is None:
                quantize(prepared, attempt, feed, method, cache, exclude=excluded)
            else:
                requantize(prepared, attempt, feed, excluded)
            stamp_metadata(attempt, meta, INT8.name)
            with open_backend(attempt) as backend:
                return evaluate(backend, val).miou()

        log(f"int8: calibrating on {len(calibration.ids)} images ({method})")
        result = Int8Result(method, fp32_miou, attempt_with([]), max_drop)
        result.attempts.append({"kept_in_float": 0, "int8_miou": result.int8_miou})
        drop = f"drop {result.drop:+.4f}, allowed {max_drop}"
        log(f"int8: val mIoU {result.int8_miou:.4f} vs fp32 {fp32_miou:.4f} ({drop})")
        if always_rank or not result.within:
            result.ranking = rank_layers(prepared, meta, feed, method, cache, work, log=log)
            count = 1
            while not result.within and count <= len(result.ranking):
                result.excluded = [r.node for r in result.ranking[:count]]
                result.int8_miou = attempt_with(result.excluded)
                result.attempts.append({"kept_in_float": count, "int8_miou": result.int8_miou})
                log(
                    f"int8: {count} most sensitive nodes in float: val mIoU {result.int8_miou:.4f} "
                    f"(drop {result.drop:+.4f})"
                )
                count *= 2
        violations = rule_violations(onnx.load(str(attempt))) if requantize is None else []
        if violations:
            raise SegdeployError(f"{target}: Q/DQ graph breaks TensorRT's rules: {violations[0]}")
        with atomic_path(target) as tmp:
            shutil.copyfile(attempt, tmp)
    return result
