"""Interleaved latency measurement: every artifact in one run, round-robin, warm-up excluded.

Each timed iteration is one call split into prepare (host preprocessing), infer (the backend's
inference, output copied to the host) and postprocess (argmax to a class map when the artifact
returns logits). Inputs are made before the loop; nothing is loaded, read or written inside it.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..backends import BackendOptions, open_variants
from ..backends.base import DEVICE_STAGES, Backend
from ..backends.table import backend_choice
from ..config import parse_size
from ..errors import SegdeployError
from ..evaluate import predictions
from ..meta import CHANNELS, AcceptedShapes, ModelMeta
from .machine import machine_info
from .stats import fit_line, summarize

FORMAT = "segdeploy.bench/1"
STAGES = ("prepare", "infer", "postprocess")


DENORMALS = ("flush", "keep")


@dataclass(frozen=True, kw_only=True)
class BenchConfig:
    shapes: list[tuple[int, int]]  # none: the first artifact's recipe input size
    batch: int = 1
    iterations: int = 30
    duration: float | None = None  # seconds per shape for all artifacts together; overrides iterations
    warmup: int = 5
    threads: int = 0  # 0: the library's default
    providers: list[str] | None = None
    backends: tuple[str, ...] = ()  # NAME[:PRECISION] per ONNX model, e.g. onnxruntime, openvino:bf16 [onnxruntime]
    torch_variants: tuple[str, ...] = ("eager",)
    cuda_graphs: tuple[bool, ...] = (False,)  # TensorRT engines: without and/or with CUDA-graph replay
    device: str = "cpu"
    flush_denormal: bool = True
    memory: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        """One check of the settings, for the command line and the Python API alike."""
        for name, value, low in (
            ("batch", self.batch, 1),
            ("iterations", self.iterations, 1),
            ("warmup", self.warmup, 0),
        ):
            if value < low:
                raise SegdeployError(f"--{name} {value}: expected {low} or more")
        if self.duration is not None and not self.duration > 0:
            raise SegdeployError(f"--duration {self.duration}: expected a number of seconds above 0")
        for height, width in self.shapes:
            if min(height, width) < 1:
                raise SegdeployError(f"--shape {height}x{width}: height and width must be at least 1")
        self.backend_options()  # its own checks (threads)
        for choice in self.backends:
            backend_choice(choice)

    @classmethod
    def from_options(
        cls,
        *,
        shapes: list[str] | None = None,
        torch_variants: list[str] | None = None,
        backends: list[str] | None = None,
        both_cuda_graphs: bool = False,
        denormals: str = "flush",
        **fields: Any,
    ) -> BenchConfig:
        """From the command line's terms: shapes 'HxW' [the recipe's], PyTorch variants [eager], engines
        without and with CUDA-graph replay or only without, denormals 'flush' or 'keep'; `fields` as they are."""
        if denormals not in DENORMALS:
            raise SegdeployError(f"--denormals '{denormals}': choose {' or '.join(DENORMALS)}")
        return cls(
            shapes=[parse_size(s) for s in shapes or []],
            torch_variants=tuple(torch_variants or ["eager"]),
            backends=tuple(backends or []),
            cuda_graphs=(False, True) if both_cuda_graphs else (False,),
            flush_denormal=denormals == DENORMALS[0],
            **fields,
        )

    def backend_options(self) -> BackendOptions:
        providers = None if self.providers is None else tuple(self.providers)
        return BackendOptions(
            device=self.device, providers=providers, threads=self.threads, flush_denormal=self.flush_denormal
        )

    def open(self, path: Path) -> list[Backend]:
        """One backend per artifact, per PyTorch variant, per CUDA-graph setting and per backend asked for."""
        return open_variants(path, self.backend_options(), self.torch_variants, self.cuda_graphs, self.backends)


@dataclass
class BenchRow:
    label: str
    backend: str
    precision: str
    batch: int
    height: int
    width: int
    iterations: int
    latency_ms: dict[str, float]
    stages_ms: dict[str, dict[str, float]]
    throughput: float  # images per second, from the mean latency
    gflops: float | None = None  # per batch, forward pass
    gflops_per_s: float | None = None  # from the median latency
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class BenchReport:
    machine: dict[str, Any]
    config: dict[str, Any]
    rows: list[BenchRow]
    memory: dict[str, dict[str, float]]
    scaling: dict[str, dict[str, float]]
    created: str = field(
        default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "created": self.created,
            "machine": self.machine,
            "config": self.config,
            "rows": [asdict(r) for r in self.rows],
            "memory": self.memory,
            "scaling": self.scaling,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str) -> BenchReport:
        """A report read back from `segdeploy bench --json`."""
        if raw.get("format") != FORMAT:
            raise SegdeployError(
                f"{where}: not a segdeploy bench JSON (format {raw.get('format')!r}, expected {FORMAT})"
            )
        try:
            rows = [BenchRow(**row) for row in raw["rows"]]
            return cls(raw["machine"], raw["config"], rows, raw["memory"], raw["scaling"], raw["created"])
        except (KeyError, TypeError) as exc:
            raise SegdeployError(f"{where}: bench JSON lacks or misnames a field ({exc})") from None


@lru_cache(maxsize=64)
def _gflops(architecture: str, encoder: str | None, classes: int, height: int, width: int) -> float | None:
    from ..models.info import gflops
    from ..models.registry import build_model

    try:
        with torch.device("meta"):
            model = build_model(architecture, encoder, classes)
        return gflops(model, height, width)
    except Exception:  # a user model that cannot be built on the meta device: no FLOP count
        return None


def model_gflops(meta: ModelMeta, batch: int, height: int, width: int) -> float | None:
    recipe = meta.recipe
    per_image = _gflops(recipe.architecture, recipe.encoder, meta.num_classes, height, width)
    return None if per_image is None else per_image * batch


def sgemm_gflops(size: int = 3072, repeats: int = 5) -> float:
    """Best-of-N float32 matrix product rate: the CPU's practically reachable peak for comparison."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(call: Any) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _measure(backends: list[Backend], frames: np.ndarray, config: BenchConfig) -> list[dict[str, list[float]]]:
    for backend in backends:
        for _ in range(config.warmup):
            predictions(backend.run(frames))
    samples: list[dict[str, list[float]]] = [{s: [] for s in STAGES} for _ in backends]
    deadline = None if config.duration is None else time.perf_counter() + config.duration
    iteration = 0
    while True:
        if deadline is None and iteration >= config.iterations:
            break
        if deadline is not None and time.perf_counter() >= deadline and iteration >= 3:
            break
        for offset in range(len(backends)):  # rotate the order so no backend always runs first
            index = (iteration + offset) % len(backends)
            backend = backends[index]
            t0 = time.perf_counter_ns()
            feed = backend.prepare(frames)
            t1 = time.perf_counter_ns()
            output = backend.infer(feed)
            t2 = time.perf_counter_ns()
            predictions(output)
            t3 = time.perf_counter_ns()
            for stage, (start, end) in zip(STAGES, ((t0, t1), (t1, t2), (t2, t3))):
                samples[index][stage].append((end - start) / 1e6)
            # GPU backends time host-to-device, compute and device-to-host with CUDA events.
            timings = backend.timings()
            if timings is not None:
                for stage in DEVICE_STAGES:
                    samples[index].setdefault(f"gpu_{stage}", []).append(timings[stage])
        iteration += 1
    return samples


def _distinct(opened: list[tuple[Path, Backend]]) -> list[Backend]:
    """The backends, with labels made distinct for the table, the JSON and the plots: artifacts of the
    same file name (a/model.onnx, b/model.onnx) are labelled with their folder, or their whole path."""
    for parts in (1, None):
        counts = collections.Counter(b.label for _, b in opened)
        for path, backend in opened:
            if counts[backend.label] > 1:
                folder = path.parent.name if parts == 1 else str(path.parent)
                backend.label = f"{folder}/{backend.label.rsplit('/', 1)[-1]}"
    return [backend for _, backend in opened]


def measure(artifacts: list[Path], config: BenchConfig, log: Any = print) -> tuple[BenchConfig, list[BenchRow]]:
    """Open every artifact (and variant), check it takes every shape, and time them all interleaved; the
    config comes back with its shapes filled in (none asked for: the first artifact's recipe input size)."""
    if not artifacts:
        raise SegdeployError("bench needs at least one artifact")
    for artifact in artifacts:
        if not artifact.exists():
            raise SegdeployError(f"{artifact}: file not found")
    torch.set_flush_denormal(config.flush_denormal)
    if config.threads:
        torch.set_num_threads(config.threads)
    with contextlib.ExitStack() as opened:
        backends = _distinct([(path, opened.enter_context(b)) for path in artifacts for b in config.open(path)])
        if not config.shapes:
            config = dataclasses.replace(config, shapes=[backends[0].meta.recipe.input_size])
        for backend in backends:  # the shapes every artifact takes and, to compare like with like, that
            exported = AcceptedShapes.of_export(backend.meta.recipe.export)  # its model was exported for
            for height, width in config.shapes:
                for accepted in (backend.accepted_shapes(), exported):
                    accepted.check_size(config.batch, height, width, backend.label)
        rng = np.random.default_rng(config.seed)
        rows = []
        for height, width in config.shapes:
            log(f"bench {config.batch}x{height}x{width}: {len(backends)} artifacts interleaved")
            frames = rng.integers(0, 256, size=(config.batch, height, width, CHANNELS), dtype=np.uint8)
            for backend, sample in zip(backends, _measure(backends, frames, config)):
                total = [sum(parts) for parts in zip(*(sample[s] for s in STAGES))]
                latency = summarize(total)
                flops = model_gflops(backend.meta, config.batch, height, width)
                rows.append(
                    BenchRow(
                        backend.label,
                        backend.name,
                        backend.precision,
                        config.batch,
                        height,
                        width,
                        len(total),
                        latency,
                        {s: summarize(times) for s, times in sample.items()},
                        config.batch * 1000 / latency["mean"],
                        flops,
                        None if flops is None else flops / (latency["median"] / 1000),
                        backend.settings(),
                    )
                )
    return config, rows


def run_bench(artifacts: list[Path], config: BenchConfig, log: Any = print) -> BenchReport:
    """`measure`, with the machine it ran on, its CPU's matrix-product rate and, per artifact, peak memory."""
    config, rows = measure(artifacts, config, log)
    machine = {**machine_info(), "sgemm_gflops": round(sgemm_gflops(), 1), "torch_threads": torch.get_num_threads()}
    memory = {}
    if config.memory:
        from .memory import peak_memory

        for path in artifacts:
            memory.update(peak_memory(path, config))
    return BenchReport(
        machine, {**asdict(config), "artifacts": [str(a) for a in artifacts]}, rows, memory, scaling(rows)
    )


def scaling(rows: list[BenchRow]) -> dict[str, dict[str, float]]:
    """Per artifact, the line through median latency against pixels per batch (with two or more shapes)."""
    fits = {}
    for label in dict.fromkeys(r.label for r in rows):
        mine = [r for r in rows if r.label == label]
        if len({(r.height, r.width) for r in mine}) >= 2:
            intercept, slope = fit_line(
                [r.batch * r.height * r.width for r in mine], [r.latency_ms["median"] for r in mine]
            )
            fits[label] = {"intercept_ms": intercept, "ms_per_megapixel": slope}
    return fits
