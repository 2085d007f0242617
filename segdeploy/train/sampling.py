"""Which samples each process sees: a DistributedSampler per epoch for training, with augmentation
seeded per sample, and a padding-free share of the validation split."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from ..errors import SegdeployError
from .distributed import World

Batch = tuple[torch.Tensor, torch.Tensor]


class SeededSamples(Dataset[Batch]):
    """Each sample's random augmentation drawn from its own seed (run seed, epoch, index): the same
    whichever process, batch position or resumed run reads it, and the global RNG left untouched."""

    def __init__(self, dataset: Dataset[Batch], seed: int) -> None:
        self.dataset = dataset
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Batch:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(((self.seed * 1_000_003 + self.epoch) * 1_000_003 + index) % 2**63)
            return self.dataset[index]


class TrainingBatches:
    """The training loader of one process. The recipe's batch size is per process; DistributedSampler
    shuffles with (seed, epoch) and pads the set to a multiple of the world size, so every process
    takes the same number of steps and a 1-process run with batch N*B sees, per step, the union of what
    N processes with batch B see."""

    def __init__(self, dataset: Dataset[Batch], batch_size: int, seed: int, world: World) -> None:
        self.samples = SeededSamples(dataset, seed)
        self.sampler: DistributedSampler[Batch] = DistributedSampler(
            self.samples, num_replicas=world.size, rank=world.rank, seed=seed
        )
        self.loader = DataLoader(self.samples, batch_size=batch_size, sampler=self.sampler, drop_last=True)
        self.steps = len(self.sampler) // batch_size
        if self.steps == 0:
            per_process = f" per process ({world.size} processes)" if world.distributed else ""
            raise SegdeployError(
                f"{len(self.samples)} training samples per epoch give fewer than one batch of {batch_size}{per_process}"
            )

    def epoch(self, epoch: int) -> DataLoader[Batch]:
        """The loader for `epoch` (0-based): its order and augmentation depend on nothing else."""
        self.sampler.set_epoch(epoch)
        self.samples.epoch = epoch
        return self.loader


def validation_share(size: int, world: World) -> range:
    """This process's share of a validation split of `size` samples. DistributedSampler(shuffle=False)
    would give rank r the indices r, r+N, ... and pad the split to a multiple of N by repeating its first
    samples; the repeats would be counted twice in the confusion matrix, so the share is the sampler's
    without them. The shares partition the split exactly."""
    return range(world.rank, size, world.size)
