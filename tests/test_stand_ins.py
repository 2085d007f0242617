"""The stand-ins are as strict as the libraries they replace (issue 21: each check cites its source in
tests/fixtures/), and the code under test still works on them."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from segdeploy.cuda import CudaSession

from .fixtures import fake_cuda, fake_tensorrt


@pytest.fixture()
def pycuda_session(fake_trt, monkeypatch):
    """A CudaSession over segdeploy's pycuda driver on the pycuda and libcuda stand-ins."""
    monkeypatch.delitem(sys.modules, "segdeploy.cuda.pycuda_driver", raising=False)
    from segdeploy.cuda import pycuda_driver

    monkeypatch.setattr(pycuda_driver, "_libcuda", fake_tensorrt.LibCuda)
    with CudaSession(0, pycuda_driver.PycudaDriver()) as session:
        yield session


def test_pycuda_async_copies_take_page_locked_memory_only(pycuda_session):
    pointer, stream = pycuda_session.alloc(64), pycuda_session.stream()
    with pytest.raises(fake_tensorrt.LogicError, match="memcpy_htod_async: host memory must be page-locked"):
        pycuda_session.copy_htod(pointer, np.zeros(16, np.float32), stream)
    pinned = pycuda_session.host(64, np.dtype(np.float32))
    pinned[:] = 7
    pycuda_session.copy_htod(pointer, pinned, stream)
    out = pycuda_session.host(64, np.dtype(np.float32))
    pycuda_session.copy_dtoh(out, pointer, stream)
    pycuda_session.synchronize(stream)
    np.testing.assert_array_equal(out, pinned)


def test_the_calibrator_stages_pageable_batches_through_page_locked_memory(pycuda_session, tmp_path):
    from segdeploy.tensorrt.calibrator import EntropyCalibrator

    batches = iter([np.full((2, 3, 4, 4), i, np.float32) for i in range(2)])  # pageable, as feeding.py makes them
    calibrator = EntropyCalibrator(batches, 2, tmp_path / "cache", {}, False, pycuda_session)
    pointers = [calibrator.get_batch(["input"]) for _ in range(2)]
    assert pointers[0] == pointers[1] and calibrator.get_batch(["input"]) is None and calibrator.served == 2
    data = fake_cuda.CURRENT.allocation(pointers[1][0], "test").data[: 2 * 3 * 4 * 4 * 4].view(np.float32)
    assert (data == 1).all()


def test_tensorrt_enum_arguments_take_the_enum_only(fake_trt):
    from segdeploy.cuda import CudaSession as Session

    with Session(0) as cuda, cuda.current():
        builder = fake_trt.Builder(fake_trt.Logger())
        config = builder.create_builder_config()
        with pytest.raises(TypeError, match="incompatible function arguments"):
            config.set_flag("FP16")
        with pytest.raises(TypeError, match="incompatible function arguments"):
            config.set_memory_pool_limit("WORKSPACE", 1 << 20)
        config.set_flag(fake_trt.tensorrt.BuilderFlag.FP16)
        assert config.flags == ["FP16"]
        del config, builder
