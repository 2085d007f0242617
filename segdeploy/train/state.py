"""Training checkpoints: the ordinary checkpoint (weights without DDP's `module.` prefix, recipe, classes)
plus what a run needs to continue: optimizer, schedule, GradScaler, epoch, best-so-far, history and
every process's RNG states. Written with temp-and-rename (best.pt first, then last.pt, so a crash
between the two never leaves last.pt claiming a best.pt that is not there) and read back with
torch.load(weights_only=True): every value is a tensor, number, string, list or dict."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import SegdeployError
from ..meta import ModelMeta
from ..models.adapter import LogitsAdapter
from ..models.checkpoint import read_checkpoint, save_checkpoint

RESUME_KEYS = ("epoch", "best_miou", "optimizer", "scheduler", "scaler", "rng", "history")


def capture_rng(device: torch.device) -> dict[str, Any]:
    """This process's RNG states: torch (and the current CUDA device's), NumPy and Python's random."""
    _, keys, position, has_gauss, gauss = np.random.get_state()
    version, python_state, python_gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "numpy": {"keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(position)},
        "numpy_gauss": [int(has_gauss), float(gauss)],
        "python": [version, list(python_state), python_gauss],
    }


def restore_rng(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state["cuda"] is not None:
        torch.cuda.set_rng_state(state["cuda"], device)
    has_gauss, gauss = state["numpy_gauss"]
    keys = state["numpy"]["keys"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", keys, state["numpy"]["pos"], has_gauss, gauss))
    version, python_state, python_gauss = state["python"]
    random.setstate((version, tuple(python_state), python_gauss))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def save_epoch(out_dir: Path, model: LogitsAdapter, meta: ModelMeta, state: dict[str, Any], improved: bool) -> Path:
    """Write best.pt (when the epoch improved on the best) and then last.pt; returns last.pt's path."""
    payload = {**state, "history": json.dumps(state["history"])}
    if improved:
        save_checkpoint(out_dir / "best.pt", model, meta, payload)
    return save_checkpoint(out_dir / "last.pt", model, meta, payload)


def read_training_state(path: Path) -> dict[str, Any]:
    """A checkpoint written by `segdeploy train`, with everything needed to continue it."""
    if not path.is_file():
        raise SegdeployError(f"{path}: nothing to resume from (no such checkpoint)")
    payload = read_checkpoint(path)
    missing = [key for key in RESUME_KEYS if key not in payload]
    if missing:
        raise SegdeployError(
            f"{path}: cannot resume from it, it lacks {', '.join(missing)} (not a last.pt written by segdeploy train)"
        )
    payload["history"] = json.loads(str(payload["history"]))
    return payload


def rng_of_rank(payload: dict[str, Any], rank: int) -> dict[str, Any] | None:
    """The RNG states rank `rank` saved, or None when the saving run had fewer processes."""
    states: list[dict[str, Any]] = payload["rng"]
    return states[rank] if rank < len(states) else None
