"""The third-party libraries segdeploy drives: their versions for manifests, their log chatter muted."""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import platform
from collections.abc import Iterator

_PACKAGES = ("segdeploy", "torch", "torchvision", "segmentation-models-pytorch", "onnx", "onnxruntime", "numpy")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in _PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


@contextlib.contextmanager
def quiet_logs(*names: str) -> Iterator[None]:
    """Silence libraries' progress chatter (exporter, quantizer) while keeping errors."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
