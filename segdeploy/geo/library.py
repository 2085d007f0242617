"""rasterio, the optional library behind segdeploy.geo, or one line saying how to install it."""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

from ..errors import SegdeployError

GEO_HINT = "needs rasterio: `pip install 'segdeploy[geo]'`"
# GDAL's block cache while segdeploy reads or writes rasters, unless GDAL_CACHEMAX is set in the environment:
# each block is read once, so GDAL's default (5% of RAM) buys nothing but RSS (benchmarks/RESULTS.md).
CACHE_BYTES = 64 << 20


def require_rasterio(subject: str) -> ModuleType:
    """The `rasterio` module, or one line naming `subject` when it is not installed."""
    try:
        return importlib.import_module("rasterio")
    except ImportError:
        raise SegdeployError(f"{subject}: {GEO_HINT}") from None


def gdal_env(subject: str) -> Any:
    """A rasterio.Env with GDAL's block cache at CACHE_BYTES (rasterio's Env takes GDAL_CACHEMAX in bytes:
    a bare 64 would be 64 bytes), so memory stays bounded by the band being read or written."""
    cache = {} if "GDAL_CACHEMAX" in os.environ else {"GDAL_CACHEMAX": CACHE_BYTES}
    return require_rasterio(subject).Env(**cache)
