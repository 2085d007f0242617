"""manifest.json beside the artifacts: hashes, versions, I/O signatures, classes and preprocessing."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SegdeployError
from ..files import read_json, sha256_of, write_json
from ..libraries import library_versions
from ..meta import ModelMeta
from ..precision_table import Precision

if TYPE_CHECKING:
    import onnx

FORMAT = "segdeploy.manifest/1"  # manifest_schema.ManifestV1 reads it
NAME = "manifest.json"


def _tensor_signature(value: onnx.ValueInfoProto) -> dict[str, Any]:
    import onnx

    tensor = value.type.tensor_type
    shape = [d.dim_param or d.dim_value for d in tensor.shape.dim]
    return {"name": value.name, "shape": shape, "dtype": onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name}


def opset_of(model: onnx.ModelProto) -> int:
    """The default-domain opset a model imports."""
    return max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def describe_onnx(path: Path, precision: Precision) -> dict[str, Any]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {
        "kind": precision.kind,
        "precision": precision.name,
        "sha256": sha256_of(path),
        "bytes": path.stat().st_size,
        "opset": opset_of(model),
        "inputs": [_tensor_signature(v) for v in model.graph.input],
        "outputs": [_tensor_signature(v) for v in model.graph.output],
    }


def describe_file(path: Path, kind: str) -> dict[str, Any]:
    return {"kind": kind, "sha256": sha256_of(path), "bytes": path.stat().st_size}


def new_manifest(meta: ModelMeta, source: Path | None) -> dict[str, Any]:
    recipe = meta.recipe
    return {
        "format": FORMAT,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": library_versions(),
        "source_checkpoint": None if source is None else {"path": str(source), "sha256": sha256_of(source)},
        "model": meta.to_dict(),
        "preprocessing": {
            "in_graph": meta.io.fold_preprocess,
            "input": "uint8 NHWC RGB frames" if meta.io.fold_preprocess else "float32 NCHW, (x/255 - mean) / std",
            "mean": list(recipe.mean),
            "std": list(recipe.std),
        },
        "output": "int32 class map (N,H,W)" if meta.io.argmax else "float32 logits (N,C,H,W)",
        "dynamic_shapes": {
            "batch": list(recipe.export.batch),
            "height": list(recipe.export.height),
            "width": list(recipe.export.width),
        },
        "artifacts": {},
    }


def read_manifest(directory: Path) -> dict[str, Any]:
    """The export folder's manifest, checked against its schema (digests in lower case)."""
    path = directory / NAME
    if not path.is_file():
        raise SegdeployError(f"{directory}: no {NAME}; is this a 'segdeploy export' folder?")
    return parse_manifest(read_json(path), path)


def parse_manifest(raw: Any, path: Path) -> dict[str, Any]:
    """`raw`, read from `path`, validated as a manifest; a wrong or missing field is one line naming it."""
    from ..schema import check_format, parse
    from .manifest_schema import ManifestV1

    check_format(raw, FORMAT, str(path), "segdeploy manifest")
    return parse(ManifestV1, raw, str(path)).model_dump(exclude_unset=True)


def write_manifest(directory: Path, manifest: dict[str, Any]) -> Path:
    return write_json(directory / NAME, manifest)
