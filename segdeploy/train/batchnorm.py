"""BatchNorm across processes: statistics over the global batch rather than each process's share.

torch.nn.SyncBatchNorm runs only on GPUs (and XPU/HPU); on CPUs under gloo its forward raises. So on
CUDA the layers become torch's SyncBatchNorm and on CPUs GlooSyncBatchNorm below: the per-channel sum,
sum of squares and count are summed over processes by an all_reduce with autograd (whose backward is
an all_reduce of the gradients, as torch's layer does it), which is what the statistics of one batch
holding every process's samples would be. Both keep BatchNorm's parameters and buffers under the same
names, so checkpoints are unchanged.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class _SumOverProcesses(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        total = grad.contiguous().clone()
        dist.all_reduce(total)
        return total


class GlooSyncBatchNorm(_BatchNorm):
    """BatchNorm whose training statistics cover every process's batch; any device, any backend."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)
        self._check_input_dim(input)
        channels = input.shape[1]
        shape = [1, channels] + [1] * (input.dim() - 2)
        dims = [0, *range(2, input.dim())]
        x = input.float()
        # Centring on the running mean (the same on every process: DDP broadcasts buffers before each
        # forward) keeps E[x^2] - E[x]^2 from cancelling; the result does not depend on the shift.
        shift = self.running_mean.detach().float() if self.running_mean is not None else x.new_zeros(channels)
        centred = x - shift.view(shape)
        count = x.new_full((1,), input.numel() // channels)
        stats = _SumOverProcesses.apply(torch.cat([centred.sum(dims), (centred * centred).sum(dims), count]))
        total = stats[-1]
        mean_centred = stats[:channels] / total
        var = (stats[channels : 2 * channels] / total - mean_centred * mean_centred).clamp(min=0)
        mean = mean_centred + shift
        out = (x - mean.view(shape)) * torch.rsqrt(var + self.eps).view(shape)
        if self.weight is not None and self.bias is not None:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            self._track(mean.detach(), var.detach() * total / (total - 1).clamp(min=1))
        return out.to(input.dtype)

    @torch.no_grad()
    def _track(self, mean: torch.Tensor, unbiased_var: torch.Tensor) -> None:
        assert self.running_mean is not None and self.running_var is not None
        assert self.num_batches_tracked is not None
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)
        self.running_var.lerp_(unbiased_var.to(self.running_var.dtype), factor)


def synchronise_batchnorm(model: nn.Module, device: torch.device) -> int:
    """Replace every BatchNorm layer in `model` with its synchronised form for `device`, sharing the
    parameters and buffers; returns how many layers it replaced."""
    kind: type[_BatchNorm] = nn.SyncBatchNorm if device.type == "cuda" else GlooSyncBatchNorm
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if not isinstance(child, _BatchNorm) or isinstance(child, kind):
                continue
            layer = kind(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
            layer.weight, layer.bias = child.weight, child.bias
            layer.running_mean, layer.running_var = child.running_mean, child.running_var
            layer.num_batches_tracked = child.num_batches_tracked
            layer.train(child.training)
            setattr(parent, name, layer)
            replaced += 1
    return replaced


def set_bn_momentum(model: nn.Module, momentum: float) -> int:
    """Set every BatchNorm layer's running-statistics momentum; returns how many layers it touched."""
    layers = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    for layer in layers:
        layer.momentum = momentum
    return len(layers)
