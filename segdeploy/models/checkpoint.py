"""Checkpoints: one file with weights and everything needed to rebuild the model; weights-only loading."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..errors import SegdeployError
from ..files import atomic_path
from ..meta import ModelMeta, default_colors
from ..recipes import Recipe
from .adapter import LogitsAdapter
from .registry import build_model

FORMAT = "segdeploy.checkpoint/1"
_IGNORED_PREFIXES = ("aux_classifier.",)  # torchvision's auxiliary head, unused at inference
# torch.save before PyTorch 1.6 (or _use_new_zipfile_serialization=False): a pickle (protocol 2) that
# starts with the long 0x1950a86a20f9469cfc6c (torch/serialization.py MAGIC_NUMBER); weights_only reads it.
_LEGACY_MAGIC = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8"


def save_checkpoint(path: Path, model: LogitsAdapter, meta: ModelMeta, state: dict[str, Any] | None = None) -> Path:
    payload = {"format": FORMAT, "meta": meta.to_dict(), "state_dict": model.model.state_dict(), **(state or {})}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def read_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SegdeployError(f"{path}: checkpoint not found")
    with open(path, "rb") as handle:
        legacy = handle.read(len(_LEGACY_MAGIC)) == _LEGACY_MAGIC
    if not (zipfile.is_zipfile(path) or legacy):
        raise SegdeployError(f"{path}: not a readable PyTorch checkpoint (neither torch.save format)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise SegdeployError(
            f"{path}: refused: it holds Python objects that torch.load(weights_only=True) will not unpickle; "
            "save a state dict or a segdeploy checkpoint instead"
        ) from None
    except Exception as exc:
        raise SegdeployError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict):
        raise SegdeployError(f"{path}: expected a dict of weights, got {type(payload).__name__}")
    return payload


def _plain_state_dict(payload: dict[str, Any], path: Path) -> dict[str, torch.Tensor]:
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(payload.get(key), dict):
            payload = payload[key]
            break
    tensors = {k.removeprefix("module."): v for k, v in payload.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise SegdeployError(f"{path}: holds no weight tensors")
    return {k: v for k, v in tensors.items() if not k.startswith(_IGNORED_PREFIXES)}


def _misfit(state: dict[str, Any], expected: dict[str, Any], missing: list[str], unexpected: list[str]) -> str:
    """Why a state dict does not fit, naming a wrapper's key prefix (Lightning's `model.`) when that is it."""
    heads = {key.split(".", 1)[0] for key in state}
    if len(heads) == 1 and heads != {key.split(".", 1)[0] for key in expected}:
        head = heads.pop()
        if {key.removeprefix(head + ".") for key in state} & set(expected):
            return (
                f"every key starts with '{head}.', the prefix of a wrapping module such as a PyTorch Lightning "
                f"module's '{head}' attribute; save that inner module's state_dict()"
            )
    detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
    return f"{detail}; a checkpoint of another architecture or encoder?"


def load_weights(model: LogitsAdapter, state: dict[str, torch.Tensor], path: Path) -> None:
    expected = model.model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise SegdeployError(f"{path}: weights do not fit the model ({_misfit(state, expected, missing, unexpected)})")
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise SegdeployError(
                f"{path}: weight '{key}' has shape {tuple(tensor.shape)}, the model expects "
                f"{tuple(expected[key].shape)} (different num_classes or encoder?)"
            )
    model.model.load_state_dict(state)


IDENTITY = ("architecture", "encoder", "num_classes")  # what the weights are; the checkpoint decides


def deployed_with(meta: ModelMeta, recipe: Recipe, path: Path) -> ModelMeta:
    """A segdeploy checkpoint's facts with a recipe given beside it. The checkpoint decides what the model
    is (architecture, encoder, classes, normalisation); the recipe how it is deployed (input_size,
    export ranges and opset, tolerances). A recipe naming another architecture, encoder or class count
    is refused."""
    own = meta.recipe
    for key in IDENTITY:
        if getattr(own, key) != getattr(recipe, key):
            raise SegdeployError(
                f"{path}: the checkpoint holds {key} {getattr(own, key)!r}, recipe '{recipe.name}' says "
                f"{getattr(recipe, key)!r}; pass the recipe it was trained with, or none (its own is used)"
            )
    deployed = own.replace(input_size=recipe.input_size, export=recipe.export, tolerance=recipe.tolerance)
    return ModelMeta(deployed, meta.class_names, meta.colors, meta.io)


def load_model(path: Path, recipe: Recipe | None = None) -> tuple[LogitsAdapter, ModelMeta, dict[str, Any]]:
    """Rebuild a model from a segdeploy checkpoint, or from a plain state dict plus a recipe."""
    payload = read_checkpoint(path)
    if payload.get("format") == FORMAT:
        meta = ModelMeta.from_dict(payload["meta"], f"{path} (meta)")
        meta = meta if recipe is None else deployed_with(meta, recipe, path)
        state = payload["state_dict"]
    else:
        if recipe is None:
            raise SegdeployError(
                f"{path}: a plain state dict, without the recipe it was trained with; make a segdeploy "
                f"checkpoint of it with 'segdeploy export RECIPE --checkpoint {path}' and use the export's model.pt"
            )
        names = [f"class{i}" for i in range(recipe.num_classes)]
        meta = ModelMeta(recipe, names, default_colors(recipe.num_classes))
        state = _plain_state_dict(payload, path)
    model = build_model(meta.recipe.architecture, meta.recipe.encoder, meta.num_classes)
    load_weights(model, state, path)
    return model.eval(), meta, payload
