"""TensorRT engines.

Pure Python (importable anywhere): `versions` (which build path a TensorRT version takes), `profiles`
(optimisation-profile shapes from a recipe), `sidecar` (the manifest beside an engine), `feeding`
(calibration batches), `calibration_key` (when a calibration cache may be reused), `constraints`
(which layers an FP16 build keeps in FP32), `progress` (builder phases for a progress bar).
Importing `tensorrt`: `build`, `calibrator`; import those only after `require_tensorrt()`. CUDA
itself is segdeploy.cuda's.
"""

from __future__ import annotations

import importlib.util

from ..cuda import cuda_available
from ..errors import SegdeployError

INSTALL_HINT = (
    "engines need TensorRT and a CUDA binding: on a desktop GPU `pip install 'segdeploy[tensorrt]'` (CUDA 12 "
    "driver) or 'segdeploy[tensorrt-cu13]' (CUDA 13), on a Jetson JetPack's python3-libnvinfer plus the "
    "binding for its CUDA: JetPack 7 `pip install 'cuda-bindings>=13,<14'`, JetPack 6.1/6.2 "
    "`pip install 'cuda-bindings>=12.6,<13'`, JetPack 5 and 6.0 `pip install pycuda` (README: Jetson and desktop GPUs)"
)


def _tensorrt_importable() -> bool:
    """The real `tensorrt` package: tensorrt-stubs alone installs a `tensorrt/` folder of .pyi files,
    which imports as an empty namespace package (a spec without an origin)."""
    spec = importlib.util.find_spec("tensorrt")
    return spec is not None and spec.origin is not None and not spec.origin.endswith(".pyi")


def tensorrt_available() -> bool:
    """True when TensorRT and a CUDA binding (cuda-bindings or pycuda) can be imported."""
    return _tensorrt_importable() and cuda_available()


def require_tensorrt(subject: str) -> None:
    """Fail with one line naming `subject` when TensorRT or a CUDA binding is missing."""
    if not tensorrt_available():
        raise SegdeployError(f"{subject}: {INSTALL_HINT}")
