"""TensorRT engines.

Pure Python (importable anywhere): `versions` (which build path a TensorRT version takes), `profiles`
(optimisation-profile shapes from a recipe), `sidecar` (the manifest beside an engine), `feeding`
(calibration batches), `progress` (builder phases for a progress bar). Importing `tensorrt`/`pycuda`:
`build`, `calibrator`, `cuda`; import those only after `require_tensorrt()`.
"""

from __future__ import annotations

import importlib.util

from ..errors import SegdeployError

INSTALL_HINT = (
    "engines need TensorRT and pycuda: on a desktop GPU `pip install 'segdeploy[tensorrt]'`, "
    "on a Jetson JetPack's python3-libnvinfer plus `pip install pycuda` (README: Deploying to Jetson)"
)


def tensorrt_available() -> bool:
    """True when both tensorrt and pycuda can be imported."""
    return all(importlib.util.find_spec(name) is not None for name in ("tensorrt", "pycuda"))


def require_tensorrt(subject: str) -> None:
    """Fail with one line naming `subject` when TensorRT or pycuda is missing."""
    if not tensorrt_available():
        raise SegdeployError(f"{subject}: {INSTALL_HINT}")
