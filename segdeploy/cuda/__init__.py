"""The few CUDA driver calls segdeploy makes, behind one protocol (`driver.Driver`) with two
implementations: cuda-bindings (NVIDIA's cuda-python wheels, no compiler) first, pycuda when that is
what is installed. `session.CudaSession` is the only user of a driver: it makes the device's primary
context current around every call on the calling thread and pops it after, serialises threads, and
releases everything it made on close(), on `with`, or from a finaliser for objects left open.
"""

from __future__ import annotations

from .driver import Driver, GpuFacts
from .select import cuda_available, load_driver
from .session import CudaSession

__all__ = ["CudaSession", "Driver", "GpuFacts", "cuda_available", "load_driver"]
