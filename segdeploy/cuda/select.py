"""Which CUDA driver implementation this machine has: cuda-bindings first, then pycuda."""

from __future__ import annotations

import importlib.util

from ..errors import SegdeployError
from .driver import Driver

INSTALL_HINT = "pip install 'cuda-bindings>=12.6,<13' (CUDA 12 driver) or 'cuda-bindings>=13,<14' (CUDA 13)"


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent package is missing
        return False


def cuda_available() -> bool:
    """True when cuda-bindings or pycuda can be imported (a GPU is not checked)."""
    return _importable("cuda.bindings") or _importable("pycuda")


def load_driver() -> Driver:
    """The installed implementation; one line naming what to install when there is none."""
    if _importable("cuda.bindings"):
        from .bindings import BindingsDriver

        return BindingsDriver()
    if _importable("pycuda"):
        from .pycuda_driver import PycudaDriver

        return PycudaDriver()
    raise SegdeployError(f"CUDA: neither cuda-bindings nor pycuda is installed; {INSTALL_HINT}")
