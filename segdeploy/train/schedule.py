"""The learning-rate schedule, stepped per batch: poly (power 0.9) or cosine, in closed form of the
step, so a run resumed on another number of processes (other steps per epoch) continues at the same
point of the schedule."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Schedule:
    kind: str  # "poly" or "cosine"
    peak_lr: float
    total_steps: int
    step: int = 0

    def lr(self) -> float:
        progress = min(self.step / self.total_steps, 1.0)
        if self.kind == "cosine":
            return self.peak_lr * 0.5 * (1.0 + math.cos(math.pi * progress))
        return self.peak_lr * (1.0 - progress) ** 0.9

    def apply(self, optimizer: torch.optim.Optimizer) -> float:
        """Set the current learning rate on every parameter group; returns it."""
        lr = self.lr()
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr

    def advance(self) -> None:
        self.step += 1

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "peak_lr": self.peak_lr, "total_steps": self.total_steps, "step": self.step}

    def resume(self, state: dict[str, Any]) -> None:
        """Continue at the fraction of the schedule `state` had reached (its own step count when the
        number of steps per epoch did not change)."""
        self.step = round(int(state["step"]) / int(state["total_steps"]) * self.total_steps)


def scaled_lr(lr: float, processes: int) -> float:
    """The linear scaling rule: the recipe's lr is for one process's batch; N processes train with N
    times the batch and N times the learning rate."""
    return lr * processes
