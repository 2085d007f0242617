"""Which CUDA driver implementation this machine has: cuda-bindings first, then pycuda.

cuda-bindings shares its major.minor version with the CUDA Toolkit and is compatible within one major
version only (cuda.bindings support policy, "CUDA minor version compatibility"): cuda-bindings 13 needs a
driver that supports CUDA 13. `pip install cuda-bindings` on a JetPack 6 board (CUDA 12.6) resolves to
13, which imports fine and cannot work; so an importable cuda-bindings is chosen only when its major
version is not newer than the driver's CUDA major (cuDriverGetVersion), and pycuda is chosen otherwise.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util

from ..errors import SegdeployError
from . import libcuda
from .driver import Driver

INSTALL_HINT = (
    "pip install 'cuda-bindings>=12.6,<13' (CUDA 12 driver: desktop, JetPack 6.1/6.2) or 'cuda-bindings>=13,<14' "
    "(CUDA 13 driver: desktop, JetPack 7); pip install pycuda on JetPack 5 and 6.0"
)


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent package is missing
        return False


def _bindings_version() -> str | None:
    try:
        return importlib.metadata.version("cuda-bindings")
    except importlib.metadata.PackageNotFoundError:  # a source build without metadata: not judged
        return None


def cuda_available() -> bool:
    """True when cuda-bindings or pycuda can be imported (a GPU is not checked)."""
    return _importable("cuda.bindings") or _importable("pycuda")


def bindings_mismatch(bindings: str | None, driver_cuda: int | None) -> str | None:
    """Why cuda-bindings `bindings` cannot work with a driver of CUDA version `driver_cuda` (as
    cuDriverGetVersion gives it), or None when it can or either version is unknown."""
    if bindings is None or driver_cuda is None:
        return None
    major = int(bindings.split(".")[0])
    if major <= driver_cuda // 1000:
        return None
    return (
        f"cuda-bindings {bindings} needs a CUDA {major} driver, this driver supports CUDA "
        f"{driver_cuda // 1000}.{driver_cuda % 1000 // 10}"
    )


def choose(bindings: bool, pycuda: bool, mismatch: str | None) -> str:
    """'cuda-bindings' or 'pycuda'; one line naming what to install when neither can work."""
    if bindings and mismatch is None:
        return "cuda-bindings"
    if pycuda:
        return "pycuda"
    if bindings:
        raise SegdeployError(f"CUDA: {mismatch}; {INSTALL_HINT}")
    raise SegdeployError(f"CUDA: neither cuda-bindings nor pycuda is installed; {INSTALL_HINT}")


def load_driver() -> Driver:
    """The installed implementation that can work with this driver (see the module docstring)."""
    bindings = _importable("cuda.bindings")
    mismatch = bindings_mismatch(_bindings_version(), libcuda.driver_version()) if bindings else None
    if choose(bindings, _importable("pycuda"), mismatch) == "cuda-bindings":
        from .bindings import BindingsDriver

        return BindingsDriver()
    from .pycuda_driver import PycudaDriver

    return PycudaDriver()
