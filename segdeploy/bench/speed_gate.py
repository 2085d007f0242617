"""The INT8 speed gate: an INT8 engine is only worth its accuracy cost when it is faster than FP16.

After an INT8 engine is built, an FP16 engine of the same model is built beside it (from model.fp16.onnx
when it is there, else with builder flags from model.onnx on TensorRT 8.5-10.x; TensorRT 11 has no
builder precision flags), or reused when one is there already, built from that very graph, TensorRT,
GPU and profile. Both are timed by the bench runner, interleaved, at the recipe's opt shape; one line
says whether INT8 is faster and the INT8 engine's sidecar records the figures under "speed_gate".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SegdeployError
from ..files import sha256_of
from ..precision_table import FP16, FP32
from ..tensorrt.sidecar import EngineManifest, add_to_sidecar, read_engine_manifest, sidecar_path
from ..tensorrt.versions import TrtVersion
from .runner import BenchConfig, BenchRow, measure

if TYPE_CHECKING:
    from ..tensorrt.options import BuildOptions
    from ..tensorrt.result import Progress

KEY = "speed_gate"  # in the INT8 engine's sidecar
STAGE = "gpu_compute"  # the bench stage compared: the engine's own time between CUDA events, copies apart
ITERATIONS, WARMUP = 50, 10


class _Skipped(Exception):
    """No FP16 engine to compare with; the message is the gate's one line."""


@dataclass(frozen=True)
class SpeedGate:
    shape: tuple[int, ...]  # the input shape both engines ran at (the profile's opt shape)
    int8_ms: float  # median per frame
    fp16_ms: float
    fp16_engine: Path
    fp16_reused: bool  # an FP16 engine already beside it, not built for the gate

    @property
    def faster(self) -> bool:
        return self.int8_ms < self.fp16_ms

    def line(self) -> str:
        shape = "x".join(str(d) for d in self.shape)
        head = f"speed gate: INT8 {self.int8_ms:.2f} ms vs FP16 {self.fp16_ms:.2f} ms per frame at {shape}: "
        if self.faster:
            return head + f"INT8 {self.fp16_ms / self.int8_ms:.1f}x faster"
        return head + f"INT8 is NOT faster ({self.int8_ms / self.fp16_ms:.2f}x)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "int8_ms_per_frame": self.int8_ms,
            "fp16_ms_per_frame": self.fp16_ms,
            "int8_faster": self.faster,
            "fp16_engine": self.fp16_engine.name,
            "fp16_reused": self.fp16_reused,
            "timed": STAGE,
        }


def _fp16_source(int8_onnx: Path, int8: EngineManifest) -> tuple[Path, str | None]:
    """The graph to build the FP16 engine from and the builder-flag precision to ask (None: as typed)."""
    typed = int8_onnx.parent / FP16.graph_file
    if typed.is_file():
        return typed, None
    version = TrtVersion.parse(int8.tensorrt)
    if not version.builder_flags:
        raise _Skipped(
            f"speed gate: skipped: no {FP16.graph_file} beside {int8_onnx.name} and TensorRT {version} has no "
            f"builder-flag FP16 to make one from {FP32.graph_file}; export with --fp16 to compare"
        )
    fp32 = int8_onnx.parent / FP32.graph_file
    if not fp32.is_file():
        raise _Skipped(f"speed gate: skipped: neither {FP16.graph_file} nor {FP32.graph_file} beside {int8_onnx.name}")
    return fp32, FP16.name


def _reusable(engine: Path, onnx: Path, int8: EngineManifest) -> bool:
    """An FP16 engine built from `onnx` as it is now, by this TensorRT for this GPU, taking the INT8 engine's
    opt shape on the same device (GPU or DLA core), and unchanged since."""
    if not (engine.is_file() and sidecar_path(engine).is_file()):
        return False
    try:
        fp16 = read_engine_manifest(engine)
    except SegdeployError:
        return False
    return (
        fp16.raw["onnx"].get("sha256") == sha256_of(onnx)
        and (fp16.tensorrt, fp16.gpu.compute_capability) == (int8.tensorrt, int8.gpu.compute_capability)
        and not fp16.profile.problems(int8.profile.opt)
        and fp16.raw["build"].get("dla_core") == int8.raw["build"].get("dla_core")
        and fp16.engine_sha256 == sha256_of(engine)
    )


def _per_frame(row: BenchRow) -> float:
    """Median ms per frame of one engine's compute."""
    return row.stages_ms[STAGE]["median"] / row.batch


def _fp16_engine(
    int8_onnx: Path,
    int8_engine: Path,
    int8: EngineManifest,
    options: BuildOptions,
    log: Callable[[str], None],
    progress: Callable[[Path], AbstractContextManager[Progress]],
) -> tuple[Path, bool]:
    """The FP16 engine to compare with, reused or built beside the INT8 engine; True when reused."""
    from ..tensorrt.build import build_engine, default_engine_path

    source, precision = _fp16_source(int8_onnx, int8)
    engine = int8_engine.parent / default_engine_path(source, precision).name
    if _reusable(engine, source, int8):
        return engine, True
    if engine.exists() and not options.force:
        raise _Skipped(
            f"speed gate: skipped: {engine} was built from another graph, TensorRT, GPU or profile; "
            "rebuild with --force to compare"
        )
    fp16_options = dataclasses.replace(options, precision=precision, calibration=None)
    with progress(source) as update:
        build_engine(source, engine, fp16_options, log=log, progress=update)
    return engine, False


def speed_gate(
    int8_onnx: Path,
    int8_engine: Path,
    options: BuildOptions,
    log: Callable[[str], None],
    progress: Callable[[Path], AbstractContextManager[Progress]],
) -> SpeedGate | None:
    """Time `int8_engine` (built from `int8_onnx` with `options`) against an FP16 engine of the same model,
    say in one line whether INT8 is faster, and record it in the INT8 sidecar; None (and one line saying
    why, recorded too) when there is no FP16 engine to compare with."""
    int8 = read_engine_manifest(int8_engine)
    try:
        fp16_engine, reused = _fp16_engine(int8_onnx, int8_engine, int8, options, log, progress)
    except _Skipped as skipped:
        log(str(skipped))
        add_to_sidecar(int8_engine, KEY, {"skipped": str(skipped)})
        return None
    export = int8.meta.recipe.export
    config = BenchConfig(
        shapes=[(export.height[1], export.width[1])],
        batch=export.batch[1],
        iterations=ITERATIONS,
        warmup=WARMUP,
        device=f"cuda:{options.device}",
        memory=False,
    )
    _, rows = measure([int8_engine, fp16_engine], config, log=lambda _: None)
    gate = SpeedGate(int8.profile.opt, _per_frame(rows[0]), _per_frame(rows[1]), fp16_engine, reused)
    log(gate.line())
    add_to_sidecar(int8_engine, KEY, gate.to_dict())
    return gate
