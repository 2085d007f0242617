"""Training under torchrun on CPUs (gloo, 2 processes): the same first step as one process with twice the
batch, exact validation mIoU, bitwise resume after a crash, resume on another process count, rank 0
alone writing, one line for a failure on one rank. The runs go through the real launcher and entry
point (`python -m torch.distributed.run ... -m segdeploy train`), each rank's output in its own file."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch.utils.data import DistributedSampler

from segdeploy.backends.torch_backend import TorchBackend
from segdeploy.cli import app
from segdeploy.data.dataset import SegmentationSplit
from segdeploy.data.spec import load_dataset_spec
from segdeploy.data.synthetic import write_synthetic_dataset
from segdeploy.errors import ReportedElsewhere, SegdeployError
from segdeploy.evaluate import evaluate
from segdeploy.train.distributed import World, describe, joined
from segdeploy.train.precision import choose_precision
from segdeploy.train.sampling import validation_share
from segdeploy.train.schedule import Schedule

from .conftest import REPO
from .helpers import one_line_error

pytestmark = pytest.mark.slow
SEED = 0


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 train images (one batch of 4 per process, or of 8 for one process) and 5 val images (an odd
    count: DistributedSampler would pad the split for 2 processes)."""
    return write_synthetic_dataset(tmp_path_factory.mktemp("data"), n_train=8, n_val=5, size=(64, 96), seed=3)


def write_recipe(path: Path, **train: Any) -> Path:
    """The tiny conv-BN net on 64x64 crops: no scale jitter, so no padded (ignored) pixels, and plain
    cross-entropy, so the mean of the per-process losses is the loss of the whole batch."""
    settings = {
        "epochs": 1, "batch_size": 4, "crop": [64, 64], "repeats": 1, "lr": 1e-2, "scale": [1.0, 1.0],
        "loss": "ce", "amp": False, "seed": SEED, **train,
    }  # fmt: skip
    recipe = {
        "name": "tiny",
        "architecture": "tests.tiny_net:build",
        "input_size": [64, 96],
        "export": {"height": [32, 64, 512], "width": [32, 96, 512], "probe_sizes": [[64, 96], [96, 128]]},
        "train": settings,
    }
    path.write_text(yaml.safe_dump(recipe))
    return path


class Run:
    """One launch of `segdeploy train` under torchrun; each rank's stdout and stderr in its own file."""

    def __init__(self, processes: int, args: list[str], cwd: Path) -> None:
        self.processes, self.cwd = processes, cwd
        self.logs = cwd / f"logs-{time.monotonic_ns()}"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
        command += ["--log-dir", str(self.logs), "--redirects", "3", "-m", "segdeploy", "train", *args]
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
        self.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def wait(self, timeout: float = 240) -> int:
        self.launcher_output = self.process.communicate(timeout=timeout)
        return self.process.returncode

    def output(self, rank: int, stream: str) -> str:
        files = list(self.logs.glob(f"*/attempt_0/{rank}/{stream}.log"))
        return files[0].read_text() if files else ""

    def worker_pid(self, rank: int) -> int | None:
        """The pid of the worker of `rank`: a child of the launcher with RANK=rank in its environment."""
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                environ = (stat.parent / "environ").read_bytes().split(b"\0")
            except (OSError, ValueError, IndexError):
                continue
            if parent == self.process.pid and f"RANK={rank}".encode() in environ:
                return int(stat.parent.name)
        return None


def train_args(recipe: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [str(recipe), "--data", str(data), "--out", str(out), "--device", "cpu", *extra]


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def first_step(data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One optimizer step: 2 processes x batch 4 at lr 1e-2 (x2 by the scaling rule), and 1 process x
    batch 8 at lr 2e-2, both SyncBatchNorm-equivalent; the two runs go side by side."""
    work = tmp_path_factory.mktemp("first-step")
    two = Run(2, train_args(write_recipe(work / "two.yaml"), data, work / "two"), work)
    one = Run(1, train_args(write_recipe(work / "one.yaml", batch_size=8, lr=2e-2), data, work / "one"), work)
    plain = Run(2, train_args(write_recipe(work / "plain.yaml", sync_batchnorm=False), data, work / "plain"), work)
    for run in (two, one, plain):
        assert run.wait() == 0, run.output(0, "stderr") + run.output(1, "stderr")
    return {"work": work, "two": two, "one": one, "plain": plain}


def test_two_processes_take_the_same_first_step_as_one_with_twice_the_batch(first_step):
    two, one = weights(first_step["work"] / "two" / "last.pt"), weights(first_step["work"] / "one" / "last.pt")
    assert two.keys() == one.keys() and not any(k.startswith("module.") for k in two)
    # AdamW's first update is lr * g / (|g| + eps): about lr * sign(g), so where a gradient is near zero
    # the float noise of summing it in another order shows; 1e-3 of the learning rate bounds that.
    for key in two:
        torch.testing.assert_close(two[key], one[key], rtol=1e-5, atol=2e-2 * 1e-3, msg=key)
    start = torch.load(first_step["work"] / "two" / "last.pt", weights_only=True)
    assert start["processes"] == 2 and start["scheduler"]["peak_lr"] == pytest.approx(2e-2)
    assert "learning rate 0.01 x 2 = 0.02" in first_step["two"].output(0, "stdout")


@pytest.mark.parametrize("run", ["two", "plain"])
def test_validation_miou_of_two_processes_is_a_single_process_evaluation(run, first_step, data):
    """With SyncBatchNorm, and with plain BatchNorm, whose per-process running statistics differ until
    rank 0's are shared before validation."""
    checkpoint = first_step["work"] / run / "last.pt"
    history = torch.load(checkpoint, weights_only=True)["history"]
    reported = json.loads(history)[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the workers
    try:
        backend = TorchBackend.from_checkpoint(checkpoint)
        matrix = evaluate(backend, SegmentationSplit(load_dataset_spec(data), "val"))
    finally:
        torch.set_num_threads(threads)
    assert reported["val_miou"] == matrix.miou()
    assert list(reported["val_iou"].values()) == matrix.iou().tolist()


def test_only_rank_0_prints_and_writes(first_step):
    two = first_step["two"]
    assert sorted(p.name for p in (first_step["work"] / "two").iterdir()) == ["best.pt", "history.json", "last.pt"]
    assert "epoch 1/1" in two.output(0, "stdout")
    assert two.output(1, "stdout") == "" and two.output(1, "stderr") == ""
    assert sorted(p.name for p in first_step["work"].iterdir() if not p.name.startswith("logs-")) == [
        "one", "one.yaml", "plain", "plain.yaml", "two", "two.yaml",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def resumed(data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """3 epochs of 8 steps on 2 processes: once uninterrupted; once with rank 1 killed (SIGKILL) as soon
    as epoch 1's last.pt appears, then resumed on 2 processes to the end."""
    work = tmp_path_factory.mktemp("resume")
    recipe = write_recipe(work / "tiny.yaml", epochs=3, batch_size=1, repeats=2)
    whole = Run(2, train_args(recipe, data, work / "whole"), work)
    assert whole.wait() == 0, whole.output(0, "stderr")
    crashed = Run(2, train_args(recipe, data, work / "crashed"), work)
    last = work / "crashed" / "last.pt"
    deadline = time.monotonic() + 120
    while not last.exists() and crashed.process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    pid = crashed.worker_pid(1)
    assert pid is not None and last.exists()
    os.kill(pid, signal.SIGKILL)
    assert crashed.wait() != 0
    assert torch.load(last, weights_only=True)["epoch"] == 1
    shutil.copytree(work / "crashed", work / "on-one")
    again = Run(2, train_args(recipe, data, work / "crashed", "--resume", str(last)), work)
    assert again.wait() == 0, again.output(0, "stderr")
    on_one = Run(1, train_args(recipe, data, work / "on-one", "--resume", str(work / "on-one" / "last.pt")), work)
    assert on_one.wait() == 0, on_one.output(0, "stderr")
    return {"whole": work / "whole", "crashed": work / "crashed", "on_one": work / "on-one", "log": on_one}


def test_a_run_killed_one_epoch_in_and_resumed_ends_bitwise_equal(resumed):
    whole = torch.load(resumed["whole"] / "last.pt", weights_only=True)
    again = torch.load(resumed["crashed"] / "last.pt", weights_only=True)
    history = json.loads(again["history"])
    assert [h["epoch"] for h in history] == [1, 2, 3]
    for key, tensor in whole["state_dict"].items():
        assert torch.equal(tensor, again["state_dict"][key]), key
    for index, state in whole["optimizer"]["state"].items():
        for name, tensor in state.items():
            assert torch.equal(tensor, again["optimizer"]["state"][index][name]), (index, name)
    assert whole["scheduler"] == again["scheduler"] and whole["best_miou"] == again["best_miou"]


def test_a_two_process_checkpoint_resumes_on_one_process(resumed):
    payload = torch.load(resumed["on_one"] / "last.pt", weights_only=True)
    history = json.loads(payload["history"])
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert [h["processes"] for h in history] == [2, 1, 1]
    assert payload["processes"] == 1 and payload["scheduler"]["step"] == payload["scheduler"]["total_steps"]
    assert payload["scheduler"]["peak_lr"] == pytest.approx(1e-2)  # one process: the recipe's lr
    assert "after epoch 1 (best val mIoU" in resumed["log"].output(0, "stdout")
    assert "written by 2 processes, continued by 1" in resumed["log"].output(0, "stdout")


def test_bad_input_on_rank_1_ends_both_processes_with_one_line(data, tmp_path):
    broken = tmp_path / "data"
    shutil.copytree(data.parent, broken)
    spec = load_dataset_spec(broken / "dataset.yaml")
    first_batch = list(DistributedSampler(range(8), num_replicas=2, rank=1, seed=SEED))
    bad = next(i for i in first_batch if i != 0)  # every rank reads sample 0 to learn the image size
    image = spec.image_path(spec.split_ids("train")[bad])
    image.write_bytes(image.read_bytes()[:100])
    run = Run(
        2,
        train_args(write_recipe(tmp_path / "tiny.yaml", batch_size=1), broken / "dataset.yaml", tmp_path / "o"),
        tmp_path,
    )
    assert run.wait() != 0
    lines = [line for rank in (0, 1) for line in run.output(rank, "stderr").splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: rank 1: {image}: unreadable image")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("option", "key"), [("--epochs", "epochs"), ("--batch", "batch_size")])
def test_epochs_and_batch_below_one_are_refused_in_one_line(option, key, data, tmp_path, runner):
    recipe = write_recipe(tmp_path / "tiny.yaml")
    result = runner.invoke(app, ["train", str(recipe), "--data", str(data), "--out", str(tmp_path / "o"), option, "0"])
    one_line_error(result, f"train.{key} 0: must be at least 1")
    assert not (tmp_path / "o").exists()


def test_validation_shares_are_the_sampler_s_without_its_padding():
    for size in range(1, 12):
        for processes in (1, 2, 3, 4):
            shares = [list(validation_share(size, World(rank, processes))) for rank in range(processes)]
            assert sorted(i for share in shares for i in share) == list(range(size))
            for rank, share in enumerate(shares):
                padded = list(DistributedSampler(range(size), processes, rank, shuffle=False))
                assert padded[: len(share)] == share


def test_schedule_resumes_at_the_same_fraction_on_another_process_count():
    two = Schedule("poly", 4e-3, total_steps=30, step=10)
    one = Schedule("poly", 2e-3, total_steps=60)
    one.resume(two.state_dict())
    assert one.step == 20 and one.lr() == pytest.approx(2e-3 * (1 - 1 / 3) ** 0.9)


def test_a_world_of_one_without_torchrun_and_its_errors(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    with joined("cpu") as world:
        assert world == World() and world.is_main and not world.distributed
    with pytest.raises(ValueError), joined("cpu"):
        raise ValueError("a bug keeps its traceback in one process")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(SegdeployError, match="WORLD_SIZE='two' is not an integer"), joined("cpu"):
        pass
    assert describe(RuntimeError("first\nsecond")) == "RuntimeError: first"
    assert describe(RuntimeError("[gloo/pair.cc:545] Read error")) == "RuntimeError: Read error"
    assert issubclass(ReportedElsewhere, SegdeployError)


def test_mixed_precision_is_bf16_on_cpus_that_have_it_and_never_scaled():
    cpu = torch.device("cpu")
    assert choose_precision(cpu, amp=False, channels_last=False).dtype is None
    chosen = choose_precision(cpu, amp=True, channels_last=True)
    assert chosen.dtype == (torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None)
    assert not chosen.scaler().is_enabled() and chosen.memory_format == torch.channels_last


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_mixed_precision_on_a_gpu_is_bf16_from_ampere_else_fp16_with_a_scaler():
    chosen = choose_precision(torch.device("cuda"), amp=True, channels_last=True)
    ampere = torch.cuda.get_device_capability()[0] >= 8
    assert chosen.dtype == (torch.bfloat16 if ampere else torch.float16)
    assert chosen.scaler().is_enabled() == (not ampere)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stray(rank: int, port: int, data: Path, tmp_path: Path, **env: str) -> subprocess.Popen[str]:
    """`segdeploy train` with a launcher's variables for a world of two but no torchrun and no second process."""
    variables = {"WORLD_SIZE": "2", "RANK": str(rank), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), **env}
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TORCHELASTIC")}
    command = [
        sys.executable,
        "-m",
        "segdeploy",
        "train",
        *train_args(write_recipe(tmp_path / "t.yaml"), data, tmp_path / "o"),
    ]
    return subprocess.Popen(
        command,
        cwd=tmp_path,
        env={**environ, **variables, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize(("rank", "fragment"), [(0, "1 of 2 joined within 2 s"), (1, "nothing listens at 127.0.0.1")])
def test_stray_launcher_variables_fail_in_one_line_within_the_timeout(rank, fragment, data, tmp_path):
    """Issue 24: WORLD_SIZE=2 RANK=... without a second process used to wait 30 minutes, deaf to signals."""
    port = _free_port()
    process = _stray(rank, port, data, tmp_path, SEGDEPLOY_RENDEZVOUS_TIMEOUT="2")
    _, stderr = process.communicate(timeout=180)
    assert process.returncode == 2
    lines = stderr.strip().splitlines()
    prefix = f"error: rank {rank}: WORLD_SIZE=2 RANK={rank} MASTER_ADDR=127.0.0.1 MASTER_PORT={port}: rank {rank}"
    assert len(lines) == 1 and lines[0].startswith(prefix + " could not join the other 1") and fragment in lines[0]
    assert "not started by torchrun" in stderr and not (tmp_path / "o").exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_a_run_waiting_for_its_other_processes_within_seconds(signum, data, tmp_path):
    port = _free_port()
    process = _stray(0, port, data, tmp_path)  # the default timeout: a minute
    deadline = time.monotonic() + 150
    while not _listening(port) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)  # rank 0 serves the store once its imports are done
    assert process.poll() is None, process.communicate()
    time.sleep(0.5)
    sent = time.monotonic()
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert time.monotonic() - sent < 10 and process.returncode == 128 + signum, stderr
    assert stderr.strip().splitlines() == [f"error: interrupted by {signum.name}; nothing half-written was left behind"]


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True
