"""Validation mIoU over the whole split from several processes: each evaluates its share, the confusion
matrices are summed across processes (integers, so exactly), and mIoU is computed once from the sum,
never as an average of per-process mIoUs."""

from __future__ import annotations

import torch

from ..backends.torch_backend import TorchBackend
from ..data.dataset import SegmentationSplit
from ..evaluate import evaluate
from ..meta import ModelMeta
from ..metrics import ConfusionMatrix
from ..models.adapter import LogitsAdapter
from .distributed import World
from .sampling import validation_share


def share_buffers(model: torch.nn.Module, world: World) -> None:
    """Give every process rank 0's buffers (BatchNorm running statistics): with plain BatchNorm each
    process tracked its own batches, and all must validate the weights that rank 0 saves."""
    for buffer in model.buffers():
        world.broadcast_(buffer.data)


def validate(
    model: LogitsAdapter, meta: ModelMeta, split: SegmentationSplit, world: World, channels_last: bool = True
) -> ConfusionMatrix:
    """The confusion matrix of `model` over all of `split`, identical on every process."""
    share_buffers(model, world)
    with TorchBackend(model, meta, device=str(world.device), channels_last=channels_last) as backend:
        matrix = evaluate(backend, split, indices=validation_share(len(split), world))
    total = world.sum_(torch.from_numpy(matrix.matrix).to(world.device))
    matrix.matrix = total.cpu().numpy()
    return matrix
