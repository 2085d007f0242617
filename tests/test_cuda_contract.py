"""The contract of segdeploy.cuda (CudaSession over a Driver), on the strict stand-in always and on a
real GPU with each installed implementation (marker `gpu`; skipped with the reason when there is none).
A torch kernel launched on the session's stream stands in for TensorRT's enqueue in capture tests."""

from __future__ import annotations

import gc
import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from segdeploy.cuda import CudaSession
from segdeploy.errors import CaptureError, SegdeployError

from .fixtures.fake_cuda import FakeDriver
from .helpers import on_threads

REPO = Path(__file__).resolve().parents[1]  # not from conftest: benchmarks/gpu_check.sh runs this file without it


def _real_driver(name: str):
    module = {"cuda-bindings": "cuda.bindings", "pycuda": "pycuda"}[name]
    try:
        installed = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        installed = False
    if not installed:
        pytest.skip(f"{name} is not installed")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU on this machine")
    if name == "cuda-bindings":
        from segdeploy.cuda.bindings import BindingsDriver

        return BindingsDriver()
    from segdeploy.cuda.pycuda_driver import PycudaDriver

    return PycudaDriver()


def _pycuda_on_fake(monkeypatch):
    """segdeploy's pycuda driver over the pycuda and libcuda stand-ins, on the strict CUDA stand-in."""
    from .fixtures import fake_cuda, fake_tensorrt

    fake = FakeDriver()
    monkeypatch.setattr(fake_cuda, "CURRENT", fake)
    monkeypatch.setitem(sys.modules, "pycuda", fake_tensorrt.pycuda)
    monkeypatch.setitem(sys.modules, "pycuda.driver", fake_tensorrt.driver)
    monkeypatch.delitem(sys.modules, "segdeploy.cuda.pycuda_driver", raising=False)
    from segdeploy.cuda import pycuda_driver

    monkeypatch.setattr(pycuda_driver, "_libcuda", fake_tensorrt.LibCuda)
    driver = pycuda_driver.PycudaDriver()
    driver.fake = fake
    return driver


@pytest.fixture(
    params=[
        "fake",
        "pycuda-on-fake",
        pytest.param("cuda-bindings", marks=pytest.mark.gpu),
        pytest.param("pycuda", marks=pytest.mark.gpu),
    ]
)
def driver(request, monkeypatch):
    if request.param == "fake":
        yield FakeDriver()
    elif request.param == "pycuda-on-fake":
        yield _pycuda_on_fake(monkeypatch)
        sys.modules.pop("segdeploy.cuda.pycuda_driver", None)  # imported over the stand-ins
    else:
        yield _real_driver(request.param)


def _fake(driver) -> FakeDriver | None:
    """The CUDA stand-in under `driver`, or None on a real GPU."""
    return driver if isinstance(driver, FakeDriver) else getattr(driver, "fake", None)


def _context_depth(driver) -> object:
    """Something that changes when a context is left on this thread's stack."""
    if _fake(driver) is not None:
        return len(_fake(driver)._stack())
    from cuda.bindings import driver as cu

    return int(cu.cuCtxGetCurrent()[1])


def _doubler(
    session: CudaSession, stream: int, n: int
) -> tuple[Callable[[np.ndarray], None], Callable[[], bool], Callable[[], np.ndarray]]:
    """(set x, enqueue y = 2x on the stream, read y): a torch kernel on a GPU, a callable on the stand-in."""
    driver = _fake(session.driver)
    if driver is not None:
        x, y = np.zeros(n, np.float32), np.zeros(n, np.float32)

        def enqueue() -> bool:
            driver.enqueue(stream, lambda: np.multiply(x, 2, out=y), "kernel")
            return True

        return (lambda v: x.__setitem__(slice(None), v)), enqueue, (lambda: y.copy())
    tx, ty = torch.zeros(n, device="cuda"), torch.zeros(n, device="cuda")
    external = torch.cuda.ExternalStream(stream)

    def enqueue_torch() -> bool:
        with torch.cuda.stream(external):
            torch.mul(tx, 2, out=ty)
        return True

    def read() -> np.ndarray:
        torch.cuda.synchronize()
        return ty.cpu().numpy()

    return (lambda v: tx.copy_(torch.from_numpy(v))), enqueue_torch, read


def test_round_trip_leaves_no_context_behind(driver):
    before = _context_depth(driver)
    with CudaSession(0, driver) as session:
        assert session.gpu.compute_capability.count(".") == 1 and _context_depth(driver) == before
        stream, device = session.stream(), session.alloc(4096)
        host_in, host_out = session.host(4096, np.dtype(np.float32)), session.host(4096, np.dtype(np.float32))
        host_in[:] = np.arange(1024, dtype=np.float32)
        start, end = session.event(), session.event()
        with session.current():  # a sequence made atomic: no other thread interleaves
            session.record(start, stream)
            session.copy_htod(device, host_in, stream)
            session.copy_dtoh(host_out, device, stream)
            session.record(end, stream)
            session.synchronize(stream)
        np.testing.assert_array_equal(host_out, host_in)
        assert session.elapsed_ms(start, end) >= 0 and session.mem_get_info()[0] > 0
        assert _context_depth(driver) == before
    assert _context_depth(driver) == before
    if _fake(driver) is not None:
        assert _fake(driver).leftover() == [] and set(_fake(driver).live().values()) == {0}


def test_close_is_idempotent_and_use_after_close_is_one_line(driver):
    session = CudaSession(0, driver)
    session.close()
    session.close()
    with pytest.raises(SegdeployError, match="CUDA session on GPU 0 .* is closed"):
        session.alloc(16)


def test_copies_are_checked(driver):
    with CudaSession(0, driver) as session:
        stream, device = session.stream(), session.alloc(16)
        with pytest.raises(SegdeployError, match="32 bytes into 16"):
            session.copy_htod(device, np.zeros(8, np.float32), stream)
        with pytest.raises(SegdeployError, match="contiguous"):
            session.copy_dtoh(np.zeros((4, 4), np.uint8)[:, :2], device, stream)
        with pytest.raises(SegdeployError, match="did not allocate"):
            session.copy_htod(device + 1 << 20, np.zeros(1, np.uint8), stream)


def test_calls_from_other_threads_work_and_are_serialised(driver):
    before = _context_depth(driver)
    with CudaSession(0, driver) as session:
        stream = session.stream()
        device = session.alloc(4096)
        host_in, host_out = session.host(4096, np.dtype(np.uint8)), session.host(4096, np.dtype(np.uint8))
        failures: list[str] = []

        def worker(value: int) -> None:
            for _ in range(20):
                with session.current():
                    host_in[:] = value
                    session.copy_htod(device, host_in, stream)
                    session.copy_dtoh(host_out, device, stream)
                    session.synchronize(stream)
                    if not (host_out == value).all():
                        failures.append(f"thread {value} read {host_out[0]}")

        on_threads(worker)
        assert failures == []
    assert _context_depth(driver) == before
    if _fake(driver) is not None:
        assert _fake(driver).leftover() == []


def test_a_session_closed_on_another_thread_is_released_and_leaves_no_context(driver):
    """Issue 21: pycuda's Context.detach pushes the primary context and never pops it; from a thread other
    than the one that retained it pycuda releases nothing. Neither may leak past close()."""
    before = _context_depth(driver)
    session = CudaSession(0, driver)
    session.alloc(64)
    depths: list[object] = []

    def close(_: int) -> None:
        session.close()
        depths.append(_context_depth(driver))

    on_threads(close, (1,))
    assert session.closed and _context_depth(driver) == before and depths == [before]
    if _fake(driver) is not None:
        assert _fake(driver).leftover() == [] and set(_fake(driver).live().values()) == {0}


def test_graph_capture_and_replay(driver):
    with CudaSession(0, driver) as session:
        stream = session.stream()
        set_x, enqueue, read = _doubler(session, stream, 256)
        set_x(np.ones(256, np.float32))
        graph = session.capture(stream, enqueue)
        set_x(np.full(256, 3, np.float32))
        session.launch(graph, stream)
        session.synchronize(stream)
        np.testing.assert_array_equal(read(), np.full(256, 6, np.float32))
        session.drop_graph(graph)
    if _fake(driver) is not None:
        assert _fake(driver).launches == 1 and set(_fake(driver).live().values()) == {0}


def test_capture_is_always_ended(driver):
    with CudaSession(0, driver) as session:
        stream = session.stream()
        with pytest.raises(CaptureError, match="enqueue failed during capture"):
            session.capture(stream, lambda: False)

        def broken() -> bool:
            raise RuntimeError("plugin failed")

        with pytest.raises(RuntimeError, match="plugin failed"):
            session.capture(stream, broken)
        _, enqueue, _ = _doubler(session, stream, 16)
        session.launch(session.capture(stream, enqueue), stream)  # the stream is usable again
        session.synchronize(stream)
    if _fake(driver) is not None:
        assert _fake(driver).leftover() == []


def test_invalidated_capture_is_a_capture_error():
    driver = FakeDriver()
    with CudaSession(0, driver) as session:
        stream = session.stream()

        def synchronising_plugin() -> bool:
            driver.invalidate(stream)
            return True

        with pytest.raises(CaptureError, match="invalidated"):
            session.capture(stream, synchronising_plugin)
        assert driver.leftover() == []


def test_a_forgotten_session_is_released_by_its_finaliser(driver):
    session = CudaSession(0, driver)
    session.alloc(64)
    session.stream()
    del session
    gc.collect()
    if _fake(driver) is not None:
        gc.collect()
        assert set(_fake(driver).live().values()) == {0} and _fake(driver).leftover() == []


def test_calls_without_a_session_context_fail_on_the_stand_in():
    driver = FakeDriver()
    driver.init()
    with pytest.raises(RuntimeError, match="CUDA_ERROR_INVALID_CONTEXT"):
        driver.alloc(16)
    with pytest.raises(SegdeployError, match="this machine has 1 GPU"):
        CudaSession(3, driver)


EXIT_SCRIPT = """
import atexit
from tests.fixtures.fake_cuda import FakeDriver
from segdeploy.cuda import CudaSession

driver = FakeDriver()
atexit.register(lambda: print("left at exit:", driver.leftover(), sorted(driver.live().items())))  # runs last
session = CudaSession(0, driver)
session.alloc(64)
session.stream()
_keep = session  # never closed, still referenced when the interpreter exits
"""


def test_a_session_open_at_exit_is_released_by_the_atexit_net():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT], capture_output=True, text=True, check=False, cwd=REPO, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "left at exit: [] [('device', 0), ('events', 0), ('execs', 0), ('graphs', 0), ('host', 0)" in result.stdout
    assert "('retained', 0), ('streams', 0)]" in result.stdout
