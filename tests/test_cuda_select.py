"""Which CUDA binding segdeploy takes (issue 21, finding 5): an importable cuda-bindings whose major version
is newer than the driver's CUDA cannot work, and a working pycuda wins over it; the install hints name the
binding per JetPack instead of a bare `pip install cuda-bindings` (which resolves to 13 on JetPack 6)."""

from __future__ import annotations

import sys

import pytest

import segdeploy.cuda.select as select
from segdeploy.cuda import libcuda
from segdeploy.errors import SegdeployError
from segdeploy.tensorrt import INSTALL_HINT

from .fixtures import fake_cuda, fake_tensorrt


@pytest.fixture()
def stand_ins(monkeypatch):
    """cuda-bindings "installed" at a version the test sets, pycuda and libcuda as stand-ins."""
    driver = fake_cuda.FakeDriver()
    monkeypatch.setattr(fake_cuda, "CURRENT", driver)
    monkeypatch.setitem(sys.modules, "pycuda", fake_tensorrt.pycuda)
    monkeypatch.setitem(sys.modules, "pycuda.driver", fake_tensorrt.driver)
    monkeypatch.delitem(sys.modules, "segdeploy.cuda.pycuda_driver", raising=False)
    monkeypatch.setattr(libcuda, "load", fake_tensorrt.LibCuda)
    monkeypatch.setattr(select, "_importable", lambda name: name in ("cuda.bindings", "pycuda"))
    yield driver
    sys.modules.pop("segdeploy.cuda.pycuda_driver", None)  # imported over the stand-ins


def test_cuda_bindings_newer_than_the_driver_gives_way_to_pycuda(stand_ins, monkeypatch):
    monkeypatch.setattr(select, "_bindings_version", lambda: "13.0.3")
    stand_ins.cuda_version = 12060  # JetPack 6.1/6.2
    assert select.load_driver().name == "pycuda"


def test_the_driver_version_comes_from_cuDriverGetVersion(stand_ins):  # noqa: N802
    stand_ins.cuda_version = 13000
    assert libcuda.driver_version() == 13000


def test_the_decision_per_version():
    assert select.bindings_mismatch("12.9.4", 13000) is None  # an older major runs on a newer driver
    assert select.bindings_mismatch("12.6.2", 12020) is None  # minor version compatibility within 12
    assert select.bindings_mismatch("13.0.3", 12060) == (
        "cuda-bindings 13.0.3 needs a CUDA 13 driver, this driver supports CUDA 12.6"
    )
    assert select.bindings_mismatch("13.0.3", None) is None and select.bindings_mismatch(None, 12060) is None
    assert select.choose(True, True, None) == "cuda-bindings"
    assert select.choose(True, True, "mismatch") == "pycuda"
    with pytest.raises(SegdeployError, match="CUDA: mismatch; pip install 'cuda-bindings>=12.6,<13'"):
        select.choose(True, False, "mismatch")
    with pytest.raises(SegdeployError, match="neither cuda-bindings nor pycuda"):
        select.choose(False, False, None)


def test_jetson_hints_pin_the_binding_per_jetpack():
    for hint in (INSTALL_HINT, select.INSTALL_HINT):
        assert "install cuda-bindings`" not in hint and "install cuda-bindings " not in hint
    assert "JetPack 6.1/6.2 `pip install 'cuda-bindings>=12.6,<13'`" in INSTALL_HINT
    assert "JetPack 7 `pip install 'cuda-bindings>=13,<14'`" in INSTALL_HINT
