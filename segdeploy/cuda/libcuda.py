"""libcuda.so.1 through ctypes (cuda.h signatures, CUresult 0 is CUDA_SUCCESS): for the calls pycuda does
not wrap and for asking the driver's CUDA version before choosing a binding."""

from __future__ import annotations

import ctypes

from ..errors import SegdeployError


def load() -> ctypes.CDLL:
    try:
        return ctypes.CDLL("libcuda.so.1")
    except OSError as exc:
        raise SegdeployError(f"CUDA: cannot load the CUDA driver library ({exc})") from None


def driver_version() -> int | None:
    """The newest CUDA version the driver supports, as cuDriverGetVersion gives it (1000 * major + 10 *
    minor: 12060 is CUDA 12.6), or None without a usable driver."""
    try:
        lib = load()
    except SegdeployError:
        return None
    version = ctypes.c_int()
    if lib.cuDriverGetVersion(ctypes.byref(version)) != 0:
        return None
    return version.value
