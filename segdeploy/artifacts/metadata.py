"""segdeploy facts stored inside an ONNX file, so a single .onnx describes itself."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SegdeployError
from ..meta import ModelMeta
from ..precision_table import FP32, PRECISIONS

if TYPE_CHECKING:
    import onnx

META_KEY = "segdeploy.meta"
PRECISION_KEY = "segdeploy.precision"
FORMAT_KEY = "segdeploy.format"
FORMAT = "segdeploy.onnx-meta/1"  # the schema of META_KEY: schema.ModelFacts; absent in older exports


def onnx_metadata(meta: ModelMeta, precision: str) -> dict[str, str]:
    return {FORMAT_KEY: FORMAT, META_KEY: json.dumps(meta.to_dict()), PRECISION_KEY: precision}


def read_onnx_metadata(props: Mapping[str, str], path: Path) -> tuple[ModelMeta, str]:
    """The model facts and precision an ONNX file carries, checked: a missing key, unreadable JSON or
    a malformed field is one line naming the file and the key."""
    if META_KEY not in props:
        raise SegdeployError(f"{path}: no segdeploy metadata in this ONNX model; export it with 'segdeploy export'")
    where = f"{path} (metadata '{META_KEY}')"
    found = props.get(FORMAT_KEY, FORMAT)
    if found != FORMAT:
        raise SegdeployError(f"{path}: metadata format {found!r}; this segdeploy reads {FORMAT!r} (upgrade segdeploy)")
    try:
        raw = json.loads(props[META_KEY])
    except ValueError as exc:
        raise SegdeployError(f"{where}: not readable JSON ({exc})") from None
    name = props.get(PRECISION_KEY, FP32.name)
    if name not in PRECISIONS:
        raise SegdeployError(f"{path} (metadata '{PRECISION_KEY}'): unknown precision {name!r}")
    return ModelMeta.from_dict(raw, where), name


def read_graph_metadata(path: Path) -> tuple[onnx.ModelProto, ModelMeta, str]:
    """An ONNX file's graph (without external data), its metadata and precision, or one line why not."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise SegdeployError(f"{path}: not a readable ONNX model ({str(exc).splitlines()[0]})") from None
    meta, precision = read_onnx_metadata({p.key: p.value for p in model.metadata_props}, path)
    return model, meta, precision


def stamp_metadata(path: Path, meta: ModelMeta, precision: str) -> None:
    """(Re)write the segdeploy metadata of an ONNX file in place; converters and quantizers drop it."""
    import onnx

    model = onnx.load(str(path))
    ours = onnx_metadata(meta, precision)
    kept = [(p.key, p.value) for p in model.metadata_props if p.key not in ours]
    del model.metadata_props[:]
    for key, text in [*kept, *ours.items()]:
        model.metadata_props.add(key=key, value=text)
    onnx.save(model, str(path))
