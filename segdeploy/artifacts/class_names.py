"""The class names of an export: from its folder's manifest.json or from an ONNX model's metadata."""

from __future__ import annotations

from pathlib import Path

from ..errors import SegdeployError
from .manifest import read_manifest


def export_class_names(path: Path) -> list[str]:
    """Class names of an export folder or of an ONNX model written by 'segdeploy export'."""
    if path.is_dir():
        model = read_manifest(path).get("model")
        names = model.get("class_names") if isinstance(model, dict) else None
        if not isinstance(names, list) or not names:
            raise SegdeployError(f"{path / 'manifest.json'}: no model.class_names")
        return [str(n) for n in names]
    if path.suffix.lower() != ".onnx":
        raise SegdeployError(f"{path}: expected an export folder or an ONNX model for the class names")
    if not path.is_file():
        raise SegdeployError(f"{path}: file not found")
    from .metadata import read_graph_metadata

    return read_graph_metadata(path)[1].class_names
