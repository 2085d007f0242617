"""The training loop: AdamW, poly/cosine schedule, AMP, validation mIoU each epoch, best/last checkpoints."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch.utils.data import DataLoader

from ..backends.torch_backend import TorchBackend
from ..data.augment import TrainingSet
from ..data.dataset import SegmentationSplit
from ..data.spec import DatasetSpec
from ..errors import SegdeployError
from ..evaluate import evaluate
from ..files import refuse_overwrite, write_json
from ..meta import CHANNELS, ModelMeta
from ..models.checkpoint import load_weights, read_checkpoint, save_checkpoint
from ..models.registry import build_model
from ..recipes import Recipe, recipe_from_dict
from .losses import build_loss


@dataclass(frozen=True)
class TrainResult:
    best: Path
    last: Path
    best_miou: float
    history: list[dict[str, Any]]


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SegdeployError(f"device '{device}' requested but CUDA is not available on this machine")
    return torch.device(device)


def autocast_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """float16 on CUDA; bfloat16 on CPUs with native bf16 (AVX512-BF16/AMX), where it is 2-4x faster."""
    if not amp:
        return None
    if device.type == "cuda":
        return torch.float16
    return torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None


def set_bn_momentum(model: torch.nn.Module, momentum: float) -> int:
    """Set every BatchNorm layer's running-statistics momentum; returns how many layers it touched."""
    layers = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for layer in layers:
        layer.momentum = momentum
    return len(layers)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _scheduler(optimizer: torch.optim.Optimizer, kind: str, total: int) -> torch.optim.lr_scheduler.LRScheduler:
    if kind == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    return torch.optim.lr_scheduler.PolynomialLR(optimizer, total_iters=total, power=0.9)


def train(
    recipe: Recipe,
    spec: DatasetSpec,
    out_dir: Path,
    *,
    device: str = "auto",
    amp: bool = True,
    resume: bool = False,
    force: bool = False,
    pretrained: bool = False,
    show_progress: bool = True,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train `recipe` on `spec`; checkpoints `best.pt` and `last.pt` and `history.json` go to `out_dir`."""
    recipe = recipe_from_dict({**recipe.to_dict(), "num_classes": spec.num_classes}, f"recipe '{recipe.name}'")
    settings = recipe.train
    best_path, last_path, history_path = out_dir / "best.pt", out_dir / "last.pt", out_dir / "history.json"
    if resume and not last_path.is_file():
        raise SegdeployError(f"{last_path}: nothing to resume from")
    if not resume:
        refuse_overwrite([best_path, last_path], force)
    torch.set_flush_denormal(True)
    seed_everything(settings.seed)
    train_split, val_split = SegmentationSplit(spec, "train"), SegmentationSplit(spec, "val")
    dataset = TrainingSet(train_split, settings)
    steps_per_epoch = len(dataset) // settings.batch_size
    if steps_per_epoch == 0:
        raise SegdeployError(f"{spec.source}: {len(dataset)} training samples per epoch, fewer than one batch")

    torch_device = pick_device(device)
    meta = ModelMeta(recipe, spec.class_names, spec.colors)
    model = build_model(recipe.architecture, recipe.encoder, recipe.num_classes, pretrained=pretrained)
    model = model.to(torch_device).to(memory_format=torch.channels_last)
    if settings.bn_momentum is not None:
        set_bn_momentum(model, settings.bn_momentum)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = _scheduler(optimizer, settings.schedule, settings.epochs * steps_per_epoch)
    loss_fn = build_loss(settings.loss, settings.class_weights, spec.ignore_index).to(torch_device)
    dtype = autocast_dtype(torch_device, amp)
    scaler = torch.amp.GradScaler(enabled=dtype == torch.float16)
    mean = torch.tensor(recipe.mean, device=torch_device).view(1, CHANNELS, 1, 1) * 255
    std = torch.tensor(recipe.std, device=torch_device).view(1, CHANNELS, 1, 1) * 255

    start_epoch, best_miou, history = 0, -1.0, []
    if resume:
        payload = read_checkpoint(last_path)
        load_weights(model, payload["state_dict"], last_path)
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        start_epoch, best_miou = int(payload["epoch"]), float(payload["best_miou"])
        history = json.loads(str(payload["history"]))
        log(f"resuming {last_path} after epoch {start_epoch} (best val mIoU {best_miou:.4f})")

    log(
        f"training {recipe.name} ({recipe.architecture}{'/' + recipe.encoder if recipe.encoder else ''}) "
        f"on {spec.name}: {len(train_split)} "
        f"train / {len(val_split)} val images, {steps_per_epoch} steps x {settings.epochs} epochs, "
        f"{torch_device.type}{'' if dtype is None else f' autocast {dtype}'}"
    )
    columns = [
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    started = time.perf_counter() - (history[-1]["seconds"] if history else 0.0)
    with Progress(*columns, disable=not show_progress) as progress:
        task = progress.add_task("train", total=(settings.epochs - start_epoch) * steps_per_epoch, info="")
        for epoch in range(start_epoch, settings.epochs):
            seed_everything(settings.seed + epoch)  # an epoch's batches do not depend on resuming
            loader = DataLoader(dataset, batch_size=settings.batch_size, shuffle=True, drop_last=True)
            model.train()
            losses = []
            for images, masks in loader:
                x = ((images.to(torch_device).float() - mean) / std).contiguous(memory_format=torch.channels_last)
                with torch.autocast(torch_device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                    logits = model(x)
                loss = loss_fn(logits.float(), masks.to(torch_device))
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                losses.append(loss.item())
                progress.update(task, advance=1, info=f"epoch {epoch + 1} loss {np.mean(losses[-20:]):.3f}")
            with TorchBackend(model, meta, device=str(torch_device)) as backend:
                matrix = evaluate(backend, val_split)
            entry: dict[str, Any] = {
                "epoch": epoch + 1,
                "loss": float(np.mean(losses)),
                "lr": scheduler.get_last_lr()[0],
                "val_miou": matrix.miou(),
                "val_iou": dict(zip(spec.class_names, matrix.iou().tolist())),
                "seconds": round(time.perf_counter() - started, 1),
            }
            history.append(entry)
            improved = entry["val_miou"] > best_miou
            best_miou = max(best_miou, entry["val_miou"])
            state = {
                "epoch": epoch + 1,
                "best_miou": best_miou,
                "val_miou": entry["val_miou"],
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "history": json.dumps(history),
            }
            save_checkpoint(last_path, model, meta, state)
            if improved:
                save_checkpoint(best_path, model, meta, state)
            write_json(history_path, history)
            ious = " ".join(f"{k}={v:.3f}" for k, v in entry["val_iou"].items())
            progress.console.print(
                f"epoch {epoch + 1}/{settings.epochs} loss {entry['loss']:.4f} "
                f"val mIoU {entry['val_miou']:.4f} ({ious}) {'*' if improved else ''}"
            )
    return TrainResult(best_path, last_path, best_miou, history)
