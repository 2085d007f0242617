"""segdeploy facts stored inside an ONNX file, so a single .onnx describes itself."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SegdeployError
from ..meta import ModelMeta
from ..precision_table import FP32

if TYPE_CHECKING:
    import onnx

META_KEY = "segdeploy.meta"
PRECISION_KEY = "segdeploy.precision"


def onnx_metadata(meta: ModelMeta, precision: str) -> dict[str, str]:
    return {META_KEY: json.dumps(meta.to_dict()), PRECISION_KEY: precision}


def read_onnx_metadata(props: Mapping[str, str], path: Path) -> tuple[ModelMeta, str]:
    if META_KEY not in props:
        raise SegdeployError(f"{path}: no segdeploy metadata in this ONNX model; export it with 'segdeploy export'")
    return ModelMeta.from_dict(json.loads(props[META_KEY]), str(path)), props.get(PRECISION_KEY, FP32.name)


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
