"""The manifest beside every engine (`model.fp16.plan.json` for `model.fp16.plan`).

An engine is only valid for the TensorRT version and GPU architecture that built it, and it cannot
describe its classes or preprocessing itself; the sidecar records all of that, and `check_loadable`
turns a mismatch into one line that says what was built where and what to do.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..artifacts.manifest import NAME, describe_file, read_manifest, write_manifest
from ..cuda.driver import GpuFacts
from ..errors import SegdeployError
from ..files import read_json, sha256_of, write_json
from ..meta import ModelMeta
from .profiles import InputProfile
from .versions import BuildPlan

FORMAT = "segdeploy.engine/1"


@dataclass(frozen=True)
class TensorFacts:
    name: str
    mode: str  # "input" or "output"
    dtype: str  # numpy dtype name
    shape: list[int]  # -1 for dynamic dimensions

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "mode": self.mode, "dtype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True)
class EngineManifest:
    meta: ModelMeta
    precision: str
    mode: str
    tensorrt: str
    gpu: GpuFacts
    tensors: list[TensorFacts]
    profile: InputProfile
    engine_sha256: str
    raw: dict[str, Any]

    @property
    def input(self) -> TensorFacts:
        return next(t for t in self.tensors if t.mode == "input")

    @property
    def output(self) -> TensorFacts:
        return next(t for t in self.tensors if t.mode == "output")


def sidecar_path(engine: Path) -> Path:
    return engine.with_name(engine.name + ".json")


def engine_manifest(
    meta: ModelMeta,
    plan: BuildPlan,
    tensorrt: str,
    gpu: GpuFacts,
    tensors: list[TensorFacts],
    profile: InputProfile,
    onnx: Path,
    engine: Path,
    settings: dict[str, Any],
) -> dict[str, Any]:
    recipe = meta.recipe
    return {
        "format": FORMAT,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "tensorrt": tensorrt,
        "gpu": gpu.to_dict(),
        "precision": plan.precision,
        "build": {
            "mode": plan.mode,
            "network_flags": list(plan.network_flags),
            "builder_flags": list(plan.builder_flags),
            **settings,
        },
        "onnx": {"path": onnx.name, "sha256": sha256_of(onnx)},
        "engine_sha256": sha256_of(engine),
        "tensors": [t.to_dict() for t in tensors],
        "profile": profile.to_dict(),
        # A static profile (DLA) takes exactly one shape; the runtime resizes frames to it.
        "accepted_shapes": [list(profile.opt)] if profile.min == profile.max else None,
        "preprocessing": {
            "in_graph": meta.io.fold_preprocess,
            "mean": list(recipe.mean),
            "std": list(recipe.std),
            "input_size": list(recipe.input_size),
        },
        "model": meta.to_dict(),
    }


def read_engine_manifest(engine: Path) -> EngineManifest:
    """The engine's sidecar, checked against its schema: a missing or malformed field is one line
    naming the file and the field."""
    from ..schema import check_format, parse
    from .sidecar_schema import SidecarV1

    path = sidecar_path(engine)
    if not path.is_file():
        raise SegdeployError(f"{engine}: no sidecar manifest {path.name}; build engines with 'segdeploy build'")
    raw = read_json(path)
    check_format(raw, FORMAT, str(path), "segdeploy engine manifest")
    sidecar = parse(SidecarV1, raw, str(path))
    gpu, profile = sidecar.gpu, sidecar.profile
    modes = [t.mode for t in sidecar.tensors]
    if modes.count("input") != 1 or modes.count("output") != 1:
        raise SegdeployError(f"{path}: field tensors: expected one input and one output tensor")
    return EngineManifest(
        ModelMeta.from_facts(sidecar.model, f"{path} (model)"),
        sidecar.precision,
        sidecar.build.mode,
        sidecar.tensorrt,
        GpuFacts(gpu.name, gpu.compute_capability, gpu.memory_mb),
        [TensorFacts(t.name, t.mode, t.dtype, list(t.shape)) for t in sidecar.tensors],
        InputProfile(profile.name, tuple(profile.min), tuple(profile.opt), tuple(profile.max)),
        sidecar.engine_sha256,
        sidecar.model_dump(exclude_unset=True),
    )


def check_loadable(manifest: EngineManifest, engine: Path, data: bytes, tensorrt: str, gpu: GpuFacts) -> None:
    """Refuse an engine (`data`: its bytes, read once by the caller) this machine cannot run, before
    TensorRT fails on it less clearly."""
    rebuild = f"rebuild it here: segdeploy build {manifest.raw['onnx']['path']} --force"
    if manifest.tensorrt != tensorrt:
        raise SegdeployError(
            f"{engine}: built with TensorRT {manifest.tensorrt}, this machine has {tensorrt}; {rebuild}"
        )
    if manifest.gpu.compute_capability != gpu.compute_capability:
        raise SegdeployError(
            f"{engine}: built for {manifest.gpu.name} (compute capability {manifest.gpu.compute_capability}), "
            f"this GPU is {gpu.name} ({gpu.compute_capability}); {rebuild}"
        )
    if hashlib.sha256(data).hexdigest() != manifest.engine_sha256:
        raise SegdeployError(f"{engine}: does not match its sidecar manifest (sha256 differs); {rebuild}")


def register_engine(engine_path: Path, onnx_path: Path, precision: str) -> None:
    """List the engine in the export folder's manifest.json (when it sits in one beside its ONNX model),
    so parity and bench find it with the other artifacts."""
    folder = engine_path.parent
    if not (folder / NAME).is_file() or onnx_path.parent.resolve() != folder.resolve():
        return
    manifest = read_manifest(folder)
    if onnx_path.name not in manifest["artifacts"]:
        return
    manifest["artifacts"][engine_path.name] = {
        **describe_file(engine_path, "tensorrt"),
        "precision": precision,
        "source": onnx_path.name,
        "sidecar": sidecar_path(engine_path).name,
    }
    write_manifest(folder, manifest)


def add_to_sidecar(engine: Path, key: str, value: Any) -> None:
    """Record `value` under `key` in the engine's sidecar manifest: what was learned after its build."""
    path = sidecar_path(engine)
    raw = read_json(path)
    raw[key] = value
    write_json(path, raw)
