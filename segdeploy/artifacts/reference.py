"""reference.npz beside the artifacts: a few frames and what PyTorch made of them at export time, so that
`segdeploy parity` can check an export where PyTorch is not installed (a Jetson, say).

Arrays (np.savez_compressed, no pickled objects): `frames` uint8 (N,H,W,3); `classes` PyTorch's class
maps (N,H,W) from its FP32 logits; `logits` those logits stored as float16 (N,C,H,W), absent for --argmax
exports, whose graphs give class maps only; `labels` the ground truth (N,H,W) when the frames came from
a data set. Where the frames came from is recorded in the manifest entry ("frames")."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SegdeployError
from ..files import atomic_path, sha256_of
from ..meta import CHANNELS
from ..precision_table import LogitTolerance
from .integrity import verify_artifact
from .manifest import NAME, describe_file

FILE = "reference.npz"
KIND = "reference"
# float16 storage rounds each logit to nearest: |stored - FP32| <= u/(1-u) |stored| with u = 2^-11, the
# unit roundoff of float16 (logits are far above its subnormal range where it matters). Parity adds this to
# the relative part of every logit tolerance it checks against stored logits.
FLOAT16_STORAGE_RTOL = 2.0**-11 / (1 - 2.0**-11)
_FLOAT16_MAX = float(np.finfo(np.float16).max)


@dataclass(frozen=True)
class Reference:
    """A stored reference, read and checked against the manifest that lists it."""

    path: Path
    sha256: str
    frames: np.ndarray
    classes: np.ndarray
    logits: np.ndarray | None
    labels: np.ndarray | None
    origin: dict[str, Any]  # where the frames came from (the manifest entry's "frames")

    @property
    def ids(self) -> list[str]:
        """A name per frame: its data set id, or random0, random1, ..."""
        return [str(i) for i in self.origin.get("ids", [])] or [f"random{i}" for i in range(len(self.frames))]

    def logit_tolerance(self, tolerance: LogitTolerance) -> LogitTolerance:
        """`tolerance` against FP32 logits, widened by float16 storage when they are stored so."""
        if self.logits is not None and self.logits.dtype == np.float16:
            return dataclasses.replace(tolerance, rtol=tolerance.rtol + FLOAT16_STORAGE_RTOL)
        return tolerance

    def describe(self) -> dict[str, Any]:
        """The reference as parity reports it: file, sha256 and the frames' origin in words."""
        return {"file": self.path.name, "sha256": self.sha256, "frames": describe_origin(self.origin)}


def describe_origin(origin: dict[str, Any]) -> str:
    if origin.get("source") == "dataset":
        return f"{origin['dataset']}/{origin['split']}: {', '.join(map(str, origin['ids']))}"
    return f"{origin.get('count', '?')} random frames (seed {origin.get('seed')})"


def write_reference(
    path: Path, frames: np.ndarray, logits: np.ndarray, labels: np.ndarray | None, keep_logits: bool
) -> None:
    """Write `frames`, the class maps of FP32 `logits` (and, with `keep_logits`, the logits as float16;
    float32 when they exceed float16's range) and `labels`, atomically."""
    classes = logits.argmax(1).astype(np.min_scalar_type(logits.shape[1] - 1))
    arrays: dict[str, np.ndarray] = {"frames": frames, "classes": classes}
    if keep_logits:
        small = np.abs(logits).max() <= _FLOAT16_MAX
        arrays["logits"] = logits.astype(np.float16 if small else np.float32)
    if labels is not None:
        arrays["labels"] = labels
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        # numpy's stubs let **arrays fill savez's allow_pickle (numpy >= 2.1; numeric arrays never pickle)
        np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]


def describe_reference(path: Path, origin: dict[str, Any]) -> dict[str, Any]:
    """The manifest entry: kind, sha256 and size like every artifact, and the frames' origin."""
    return {**describe_file(path, KIND), "frames": origin}


def reference_entry(manifest: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The (file name, entry) of the stored reference a manifest lists, or None (exports before it)."""
    for name, entry in manifest.get("artifacts", {}).items():
        if isinstance(entry, dict) and entry.get("kind") == KIND:
            return str(name), entry
    return None


def read_reference(directory: Path, manifest: dict[str, Any], num_classes: int) -> Reference:
    """The stored reference of an export folder, refused in one line when the manifest lists none, its
    sha256 differs from the manifest's, or its arrays do not fit together or the model's `num_classes`."""
    listed = reference_entry(manifest)
    if listed is None:
        raise SegdeployError(
            f"{directory / NAME}: lists no stored reference ({FILE}), the export predates it; export again "
            "to compare without PyTorch, or give --data where PyTorch is installed"
        )
    name, entry = listed
    path = directory / name
    if not path.is_file():
        raise SegdeployError(f"{path}: listed in {directory / NAME} but missing")
    verify_artifact(path)
    digest = sha256_of(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise SegdeployError(f"{path}: not a readable reference ({str(exc).splitlines()[0]})") from None
    origin = entry.get("frames")
    reference = Reference(
        path,
        digest,
        _array(arrays, "frames", path),
        _array(arrays, "classes", path),
        arrays.get("logits"),
        arrays.get("labels"),
        origin if isinstance(origin, dict) else {},
    )
    _check_shapes(reference, num_classes)
    _check_origin(reference, directory / NAME)
    return reference


def _array(arrays: dict[str, np.ndarray], key: str, path: Path) -> np.ndarray:
    if key not in arrays:
        raise SegdeployError(f"{path}: no '{key}' array; not a segdeploy reference")
    return arrays[key]


def _check_origin(reference: Reference, manifest: Path) -> None:
    """The manifest's record of where the frames came from: a data set with an id per frame, or random."""
    origin, count = reference.origin, len(reference.frames)
    if origin.get("source") == "random":
        return
    ids = origin.get("ids")
    fields = all(isinstance(origin.get(key), str) for key in ("dataset", "split"))
    if origin.get("source") != "dataset" or not fields or not isinstance(ids, list) or len(ids) != count:
        raise SegdeployError(
            f"{manifest}: the {reference.path.name} entry's 'frames' is not a data set, split and {count} ids, "
            "nor 'random'"
        )


def _check_shapes(reference: Reference, num_classes: int) -> None:
    path, frames, classes = reference.path, reference.frames, reference.classes
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != CHANNELS or not frames.shape[0]:
        raise SegdeployError(f"{path}: frames are {frames.dtype} {frames.shape}, expected uint8 (N,H,W,{CHANNELS})")
    maps = {"classes": classes, "labels": reference.labels}
    for key, value in maps.items():
        if value is not None and (value.shape != frames.shape[:3] or value.dtype.kind not in "iu"):
            raise SegdeployError(f"{path}: {key} are {value.dtype} {value.shape}, expected integers {frames.shape[:3]}")
    if classes.size and int(classes.max()) >= num_classes:
        raise SegdeployError(f"{path}: classes hold class {int(classes.max())}; the model has {num_classes}")
    logits = reference.logits
    expected = (frames.shape[0], num_classes, *frames.shape[1:3])
    if logits is not None and (logits.dtype.kind != "f" or logits.shape != expected):
        raise SegdeployError(
            f"{path}: logits are {logits.dtype} {logits.shape}, expected float {expected} "
            f"(the model has {num_classes} classes)"
        )
