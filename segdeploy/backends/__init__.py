"""Inference backends behind one interface: uint8 frames in, logits or class maps out."""

from __future__ import annotations

from .base import Backend
from .options import BackendOptions, cuda_index
from .table import TABLE, open_all, open_backend, open_variants, row_for

__all__ = ["TABLE", "Backend", "BackendOptions", "cuda_index", "open_all", "open_backend", "open_variants", "row_for"]
