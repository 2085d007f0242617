"""The training loop, in one process or many under torchrun (DistributedDataParallel): AdamW, a per-batch
schedule, mixed precision, validation mIoU over the whole split each epoch, best/last checkpoints."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator
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
from torch.nn.parallel import DistributedDataParallel

from ..data.augment import TrainingSet
from ..data.dataset import SegmentationSplit
from ..data.spec import DatasetSpec
from ..errors import SegdeployError
from ..files import refuse_overwrite, require_folder, write_json
from ..meta import CHANNELS, ModelMeta
from ..models.checkpoint import load_weights
from ..models.registry import build_model
from ..recipes import Recipe, recipe_from_dict
from .batchnorm import set_bn_momentum, synchronise_batchnorm
from .distributed import World, joined
from .losses import build_loss
from .precision import choose_precision
from .sampling import TrainingBatches
from .schedule import Schedule, scaled_lr
from .state import capture_rng, read_training_state, restore_rng, rng_of_rank, save_epoch, seed_everything
from .validation import validate


@dataclass(frozen=True)
class TrainResult:
    best: Path
    last: Path
    best_miou: float
    history: list[dict[str, Any]]


def train(
    recipe: Recipe,
    spec: DatasetSpec,
    out_dir: Path,
    *,
    device: str = "auto",
    resume: Path | None = None,
    force: bool = False,
    pretrained: bool = False,
    show_progress: bool = True,
    log: Callable[[str], None] = print,
    world: World | None = None,
) -> TrainResult:
    """Train `recipe` on `spec`; rank 0 writes `best.pt`, `last.pt` and `history.json` to `out_dir`.
    Under torchrun every process calls this; `world` is the one the caller joined (else it is joined here)."""
    if world is None:
        with joined(device) as joined_world:
            return train(
                recipe, spec, out_dir, resume=resume, force=force, pretrained=pretrained,
                show_progress=show_progress, log=log, world=joined_world,
            )  # fmt: skip
    recipe = recipe_from_dict({**recipe.to_dict(), "num_classes": spec.num_classes}, f"recipe '{recipe.name}'")
    settings = recipe.train
    log = world.main_only(log)
    best_path, last_path, history_path = out_dir / "best.pt", out_dir / "last.pt", out_dir / "history.json"
    require_folder(out_dir)
    payload = read_training_state(resume) if resume is not None else None
    if payload is not None and int(payload["epoch"]) >= settings.epochs:
        raise SegdeployError(
            f"{resume}: already trained {int(payload['epoch'])} epochs; --epochs {settings.epochs} leaves none "
            f"to run (pass more than {int(payload['epoch'])})"
        )
    if resume is None or resume.resolve().parent != out_dir.resolve():
        refuse_overwrite([best_path, last_path], force)
    torch.set_flush_denormal(True)
    seed_everything(settings.seed)  # the same initial weights on every process
    train_split, val_split = SegmentationSplit(spec, "train"), SegmentationSplit(spec, "val")
    batches = TrainingBatches(TrainingSet(train_split, settings), settings.batch_size, settings.seed, world)

    meta = ModelMeta(recipe, spec.class_names, spec.colors)
    model = build_model(recipe.architecture, recipe.encoder, recipe.num_classes, pretrained=pretrained)
    precision = choose_precision(world.device, settings.amp, settings.channels_last)
    model = model.to(world.device).to(memory_format=precision.memory_format)
    if settings.bn_momentum is not None:
        set_bn_momentum(model, settings.bn_momentum)
    synced = synchronise_batchnorm(model, world.device) if world.distributed and settings.sync_batchnorm else 0
    if payload is not None and resume is not None:
        load_weights(model, payload["state_dict"], resume)
    trainee: torch.nn.Module = model
    if world.distributed:
        device_ids = [world.device.index] if world.device.type == "cuda" else None
        trainee = DistributedDataParallel(model, device_ids=device_ids)
    peak_lr = scaled_lr(settings.lr, world.size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=peak_lr, weight_decay=settings.weight_decay)
    schedule = Schedule(settings.schedule, peak_lr, settings.epochs * batches.steps)
    loss_fn = build_loss(settings.loss, settings.class_weights, spec.ignore_index).to(world.device)
    scaler = precision.scaler()
    mean = torch.tensor(recipe.mean, device=world.device).view(1, CHANNELS, 1, 1) * 255
    std = torch.tensor(recipe.std, device=world.device).view(1, CHANNELS, 1, 1) * 255

    start_epoch, best_miou, history = 0, -1.0, []
    seed_everything(settings.seed + world.rank)  # dropout and the like differ between processes
    if payload is not None:
        optimizer.load_state_dict(payload["optimizer"])
        if payload["scaler"]:  # empty from a run without float16 (CPU, bf16 GPU)
            scaler.load_state_dict(payload["scaler"])
        schedule.resume(payload["scheduler"])
        rng = rng_of_rank(payload, world.rank)
        if rng is not None:
            restore_rng(rng, world.device)
        start_epoch, best_miou, history = int(payload["epoch"]), float(payload["best_miou"]), payload["history"]
        saved_by = int(payload.get("processes", 1))
        moved = f", written by {saved_by} processes, continued by {world.size}" if saved_by != world.size else ""
        log(f"resuming {resume} after epoch {start_epoch} (best val mIoU {best_miou:.4f}{moved})")

    log(
        f"training {recipe.name} ({recipe.architecture}{'/' + recipe.encoder if recipe.encoder else ''}) "
        f"on {spec.name}: {len(train_split)} train / {len(val_split)} val images, "
        f"{batches.steps} steps x {settings.epochs} epochs, {world.device.type} {precision.describe()}"
    )
    if world.distributed:
        log(
            f"{world.size} processes ({world.device.type}, {'nccl' if world.device.type == 'cuda' else 'gloo'}): "
            f"batch {settings.batch_size} per process = {settings.batch_size * world.size} global; learning rate "
            f"{settings.lr:g} x {world.size} = {peak_lr:g}; "
            + (f"{synced} BatchNorm layers synchronised" if settings.sync_batchnorm else "plain BatchNorm per process")
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
    with Progress(*columns, disable=not (show_progress and world.is_main)) as progress:
        task = progress.add_task("train", total=(settings.epochs - start_epoch) * batches.steps, info="")
        for epoch in range(start_epoch, settings.epochs):
            trainee.train()
            losses: list[float] = []
            lr = schedule.lr()
            epoch_started = time.perf_counter()
            for images, masks in batches.epoch(epoch):
                x = ((images.to(world.device).float() - mean) / std).contiguous(memory_format=precision.memory_format)
                lr = schedule.apply(optimizer)
                with precision.autocast(), _batchnorm_refusal(recipe, len(x)):
                    logits = trainee(x)
                loss = loss_fn(logits.float(), masks.to(world.device))
                value = loss.item()
                if not math.isfinite(value):  # stop before it reaches the weights (and best.pt)
                    raise _diverged(
                        f"epoch {epoch + 1} step {len(losses) + 1}: the loss is {value}", last_path, history
                    )
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                schedule.advance()
                losses.append(value)
                progress.update(task, advance=1, info=f"epoch {epoch + 1} loss {np.mean(losses[-20:]):.3f}")
            train_seconds = time.perf_counter() - epoch_started
            if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
                raise _diverged(f"epoch {epoch + 1}: the weights are no longer finite", last_path, history)
            matrix = validate(model, meta, val_split, world, settings.channels_last)
            entry: dict[str, Any] = {
                "epoch": epoch + 1,
                "loss": float(np.mean(world.gather(float(np.mean(losses))))),
                "lr": lr,
                "val_miou": matrix.miou(),
                "val_iou": dict(zip(spec.class_names, matrix.iou().tolist())),
                "processes": world.size,
                "images_per_second": round(batches.steps * settings.batch_size * world.size / train_seconds, 2),
                "seconds": round(time.perf_counter() - started, 1),
            }
            history.append(entry)
            improved = entry["val_miou"] > best_miou
            best_miou = max(best_miou, entry["val_miou"])
            rng_states = world.gather(capture_rng(world.device))
            if world.is_main:
                state = {
                    "epoch": epoch + 1,
                    "best_miou": best_miou,
                    "val_miou": entry["val_miou"],
                    "optimizer": optimizer.state_dict(),
                    "scheduler": schedule.state_dict(),
                    "scaler": scaler.state_dict(),
                    "rng": rng_states,
                    "processes": world.size,
                    "history": history,
                }
                save_epoch(out_dir, model, meta, state, improved)
                write_json(history_path, history)
                ious = " ".join(f"{k}={v:.3f}" for k, v in entry["val_iou"].items())
                progress.console.print(
                    f"epoch {epoch + 1}/{settings.epochs} loss {entry['loss']:.4f} "
                    f"val mIoU {entry['val_miou']:.4f} ({ious}) {'*' if improved else ''}",
                    markup=False,
                )
    world.barrier()
    return TrainResult(best_path, last_path, best_miou, history)


def _diverged(what: str, last: Path, history: list[dict[str, Any]]) -> SegdeployError:
    """One line for a run whose numbers stopped being finite; it names the checkpoint that stays."""
    kept = f"{last} keeps epoch {history[-1]['epoch']}" if history and last.is_file() else "no checkpoint was written"
    return SegdeployError(f"{what} (NaN or infinite): training stopped, {kept}; lower train.lr or check the data")


@contextlib.contextmanager
def _batchnorm_refusal(recipe: Recipe, batch: int) -> Iterator[None]:
    """BatchNorm over a 1x1 map (DeepLabv3+'s ASPP image pooling) cannot train on one sample: one line."""
    try:
        yield
    except ValueError as exc:
        if "Expected more than 1 value per channel when training" not in str(exc):
            raise
        raise SegdeployError(
            f"batch of {batch} per process: {recipe.architecture} has a BatchNorm layer over a 1x1 map (such as "
            "DeepLabv3+'s ASPP pooling) that cannot train on one sample; use --batch 2 or more"
        ) from None
