"""Joining a torchrun world: the process group from the environment (NCCL on GPUs, gloo on CPUs), one
GPU per process, collectives that are no-ops in a single process, and failures reported once.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK (and MASTER_ADDR/MASTER_PORT) for every process it
starts; without them this is a world of one and nothing is initialised. A failure on one rank makes
the others fail too, in their next collective (the peer's sockets close) or by torchrun's hand (it
stops every worker once one exits). So that the user reads the cause once, each failing rank offers a
one-line description to the rendezvous store; the first offer wins, that rank prints it and the others
exit silently (ReportedElsewhere).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.distributed.constants import default_pg_timeout

from ..backends.torch_backend import pick_device
from ..errors import ReportedElsewhere, SegdeployError


@dataclass(frozen=True)
class World:
    """This process's place among the training processes, and the device it trains on."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that prints and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def main_only(self, log: Callable[[str], None]) -> Callable[[str], None]:
        """`log` on rank 0, silence elsewhere."""
        return log if self.is_main else _silent

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum `tensor` over all processes, in place."""
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def broadcast_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Overwrite `tensor` with rank 0's, in place."""
        if self.distributed:
            dist.broadcast(tensor, src=0)
        return tensor

    def gather(self, value: Any) -> list[Any]:
        """Every process's `value` (picklable), in rank order, on every process."""
        if not self.distributed:
            return [value]
        values: list[Any] = [None] * self.size
        dist.all_gather_object(values, value)
        return values


def _silent(_: str) -> None:
    return None


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise SegdeployError(f"environment variable {name}='{text}' is not an integer (set by torchrun)") from None


def resolve_device(device: str, local_rank: int, size: int) -> torch.device:
    """auto, cpu, cuda or cuda:N; in a multi-process run each process takes the GPU of its LOCAL_RANK."""
    chosen = pick_device(device)
    if size == 1 or chosen.type != "cuda":
        return chosen
    if device not in ("auto", "cuda"):
        raise SegdeployError(f"--device {device}: with torchrun each process uses the GPU of its LOCAL_RANK; pass cuda")
    if local_rank >= torch.cuda.device_count():
        raise SegdeployError(
            f"LOCAL_RANK {local_rank} but {torch.cuda.device_count()} GPU(s) visible: "
            "--nproc-per-node must not exceed the GPUs per machine"
        )
    return torch.device("cuda", local_rank)


_SOURCE_LOCATION = re.compile(r"^\[[^]]*\] ")  # gloo's "[.../pair.cc:545] " before its message


def describe(exc: BaseException) -> str:
    """One line: a SegdeployError's message, or the exception type and the first line of its text."""
    if isinstance(exc, SegdeployError):
        return str(exc)
    lines = str(exc).strip().splitlines()
    if not lines:
        return type(exc).__name__
    text = _SOURCE_LOCATION.sub("", lines[0])
    return f"{type(exc).__name__}: {text}"


def _failure_key() -> str:
    return f"segdeploy/failure/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"


def report_once(world: World, exc: BaseException) -> SegdeployError:
    """The error this rank should raise: the first failure offered by any rank, prefixed with its rank,
    or ReportedElsewhere when another rank's failure came first."""
    code = exc.exit_code if isinstance(exc, SegdeployError) else 1
    mine = f"{code} rank {world.rank}: {describe(exc)}"
    try:
        store = dist.distributed_c10d._get_default_store()
        first = store.compare_set(_failure_key(), "", mine).decode()
    except Exception:  # the store lived in a rank that is gone (a launch without torchrun's agent store)
        first = mine
    code_text, _, message = first.partition(" ")
    if first == mine:
        return SegdeployError(message, int(code_text))
    return ReportedElsewhere(message, int(code_text))


TIMEOUT_VARIABLE = "SEGDEPLOY_RENDEZVOUS_TIMEOUT"  # seconds the processes have to find each other
DEFAULT_TIMEOUT = 60.0  # torchrun starts a world's workers together, after its own rendezvous
_ATTEMPT = 1.0  # seconds one connection attempt may block in C++, where no signal handler runs


def _rendezvous(backend: str, rank: int, size: int) -> None:
    """init_process_group on a store this process joined itself, in steps that wait at most _ATTEMPT
    in C++: torch's env:// rendezvous blocks there for 30 minutes when the other processes never
    come (stray WORLD_SIZE/RANK variables), deaf to SIGINT and SIGTERM. Here every wait is a Python
    loop with a deadline, and the failure is one line naming the variables."""
    timeout = _env_seconds(TIMEOUT_VARIABLE, DEFAULT_TIMEOUT)
    deadline = time.monotonic() + timeout
    variables = " ".join(
        f"{k}={os.environ.get(k, '(unset)')}" for k in ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT")
    )
    launcher = "" if "TORCHELASTIC_RUN_ID" in os.environ else "; not started by torchrun? unset them for one process"

    def failed(cause: str) -> SegdeployError:
        return SegdeployError(
            f"{variables}: rank {rank} could not join the other {size - 1} process(es): {cause}{launcher}"
        )

    store = _connect(rank, size, deadline, failed)
    key = f"segdeploy/joined/{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}"
    store.add(key, 1)
    while store.add(key, 0) < size:
        if time.monotonic() > deadline:
            raise failed(f"{store.add(key, 0)} of {size} joined within {timeout:g} s ({TIMEOUT_VARIABLE})")
        time.sleep(0.05)
    store.set_timeout(default_pg_timeout)
    dist.init_process_group(backend, store=store, rank=rank, world_size=size)


def _connect(rank: int, size: int, deadline: float, failed: Callable[[str], SegdeployError]) -> dist.TCPStore:
    """The rendezvous store at MASTER_ADDR:MASTER_PORT: served by rank 0 (by torchrun's agent when it
    says so, as torch's env:// rendezvous does), reached by the others once something listens there."""
    host, port = os.environ.get("MASTER_ADDR"), _env_int("MASTER_PORT", -1)
    if not host or not 0 <= port < 2**16:
        raise failed("MASTER_ADDR and MASTER_PORT must name rank 0's host and a free port")
    attempt = datetime.timedelta(seconds=_ATTEMPT)
    try:
        if rank == 0 and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
            return dist.TCPStore(host, port, size, True, attempt, wait_for_workers=False, multi_tenant=True)
        while not _listening(host, port):  # probed in Python: TCPStore's own retries log pages of C++ frames
            if time.monotonic() > deadline:
                raise failed(f"nothing listens at {host}:{port} (rank 0's store)")
            time.sleep(0.2)
        return dist.TCPStore(host, port, size, False, attempt)
    except RuntimeError as exc:
        raise failed(describe(exc)) from None


def _listening(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=_ATTEMPT).close()
    except OSError:
        return False
    return True


def _env_seconds(name: str, default: float) -> float:
    text = os.environ.get(name)
    try:
        value = default if text is None else float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise SegdeployError(f"environment variable {name}='{text}': expected seconds above 0")
    return value


@contextlib.contextmanager
def joined(device: str = "auto") -> Iterator[World]:
    """Join the torchrun world for the duration of the block (a world of one without torchrun).
    Inside a multi-process world any exception leaves the block as a one-line SegdeployError on the rank
    whose failure came first and as ReportedElsewhere on the others."""
    size, rank, local_rank = _env_int("WORLD_SIZE", 1), _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if size < 1 or not 0 <= rank < size:
        raise SegdeployError(f"RANK {rank} and WORLD_SIZE {size} do not describe a process of a torchrun world")
    created = size > 1 and not dist.is_initialized()
    world = World(rank, size, local_rank)
    try:
        world = World(rank, size, local_rank, resolve_device(device, local_rank, size))
        if world.device.type == "cuda":
            torch.cuda.set_device(world.device)
        if created:
            _rendezvous("nccl" if world.device.type == "cuda" else "gloo", rank, size)
        yield world
    except ReportedElsewhere:
        raise
    except Exception as exc:
        if not world.distributed:
            raise
        raise report_once(world, exc) from None
    if created:
        dist.destroy_process_group()
