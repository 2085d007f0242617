"""rasterio, the optional library behind segdeploy.geo, or one line saying how to install it."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import SegdeployError

GEO_HINT = "needs rasterio: `pip install 'segdeploy[geo]'`"


def require_rasterio(subject: str) -> ModuleType:
    """The `rasterio` module, or one line naming `subject` when it is not installed."""
    try:
        return importlib.import_module("rasterio")
    except ImportError:
        raise SegdeployError(f"{subject}: {GEO_HINT}") from None
