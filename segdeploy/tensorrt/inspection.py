"""Per-layer precisions from TensorRT's engine inspector. Pure Python: the JSON is read here, the
inspector itself is asked by the TensorRT backend (`TensorRTBackend.layer_information`).

IEngineInspector.get_engine_information(LayerInformationFormat.JSON) (TensorRT >= 8.2) returns
{"Layers": [...], ...}. Each layer is a dict ("Name", "LayerType", "ParameterType", "Inputs",
"Outputs", each tensor with "Name", "Dimensions", "Format/Datatype") only for an engine built with
ProfilingVerbosity.DETAILED; with the default LAYER_NAMES_ONLY it is the layer's name as a string, with
NONE the list is empty (TensorRT developer guide, "Engine Inspector"; TensorRT's trt-engine-explorer
reads the same fields). "Format/Datatype" is a description such as "Row major linear FP32",
"Channel major FP16 format where channel % 8 == 0" or "Thirty-two wide channel vectorized row major
Int8 format", or only the type ("Half", "Int8") in newer releases.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import SegdeployError

# Type words of "Format/Datatype" -> precision; whole words, so "Int8" is not found in "UInt8".
_TYPES = {
    "int8": "INT8",
    "fp8": "FP8",
    "fp16": "FP16",
    "half": "FP16",
    "bfloat16": "BF16",
    "bf16": "BF16",
    "fp32": "FP32",
    "float": "FP32",
    "int32": "INT32",
    "int64": "INT64",
    "uint8": "UINT8",
    "bool": "BOOL",
}
_TYPE_WORD = re.compile(r"\b(" + "|".join(_TYPES) + r")\b", re.IGNORECASE)
_ORDER = ("INT8", "FP8", "FP16", "BF16", "FP32")  # the summary's order; other types follow by count
UNKNOWN = "?"


def precision_of(description: str) -> str:
    """The precision a "Format/Datatype" description names, or '?' when it names none."""
    match = _TYPE_WORD.search(description)
    return _TYPES[match[1].lower()] if match else UNKNOWN


@dataclass(frozen=True)
class EngineLayer:
    name: str
    kind: str  # "ParameterType" (Convolution, Resize...), else "LayerType"
    inputs: tuple[str, ...]  # precision per input tensor
    outputs: tuple[str, ...]

    @property
    def precision(self) -> str:
        """What the layer computes in: its first input's type (as trt-engine-explorer counts), else its output's."""
        return (self.inputs or self.outputs or (UNKNOWN,))[0]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.kind, "inputs": list(self.inputs), "outputs": list(self.outputs)}


@dataclass(frozen=True)
class EngineLayers:
    engine: Path
    detailed: bool  # False: built without ProfilingVerbosity.DETAILED, names only
    layers: tuple[EngineLayer, ...]

    def counts(self) -> dict[str, int]:
        """Layers per precision: INT8, FP8, FP16, BF16, FP32 first, then the rest by count."""
        counted = Counter(layer.precision for layer in self.layers)
        order = [p for p in _ORDER if p in counted] + [p for p, _ in counted.most_common() if p not in _ORDER]
        return {p: counted[p] for p in order}

    def summary(self) -> str:
        """'INT8 41 layers, FP16 12, FP32 3 (Resize, Softmax)': FP32 names the layer types that stayed there."""
        parts = []
        for index, (precision, count) in enumerate(self.counts().items()):
            part = f"{precision} {count}" + (" layers" if index == 0 else "")
            if precision == "FP32":
                kinds = list(dict.fromkeys(layer.kind for layer in self.layers if layer.precision == "FP32"))
                part += f" ({', '.join(kinds[:4])}{', ...' if len(kinds) > 4 else ''})"
            parts.append(part)
        return ", ".join(parts) or "no layers"

    def lacking_detail(self) -> str:
        """The one line for an engine whose inspector gives no precisions."""
        return (
            f"{self.engine}: built without ProfilingVerbosity.DETAILED, so TensorRT reports layer names only "
            f"({len(self.layers)} layers) and no precisions; rebuild it with 'segdeploy build --force'"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": str(self.engine),
            "detailed": self.detailed,
            "counts": self.counts(),
            "layers": [layer.to_dict() for layer in self.layers],
        }


def _readable(name: str) -> str:
    # TensorRT 8.6+ separates fused names and metadata with \x1e and \x1f (NVIDIA/TensorRT issue 2779).
    return name.replace("\x1e", "+").replace("\x1f", "+")


def _precisions(tensors: Any) -> tuple[str, ...]:
    return tuple(precision_of(str(t.get("Format/Datatype", ""))) for t in tensors if isinstance(t, dict))


def parse_engine_information(text: str, engine: Path) -> EngineLayers:
    """The inspector's JSON for `engine` as layers with their precisions, or one line when it is not that JSON."""
    try:
        raw = json.loads(text)
        entries = raw["Layers"]
        if not isinstance(entries, list):
            raise TypeError("Layers is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        raise SegdeployError(f"{engine}: TensorRT's engine inspector gave no layer list ({exc})") from None
    if not all(isinstance(entry, dict) for entry in entries):
        names = tuple(EngineLayer(_readable(str(entry)), "", (), ()) for entry in entries)
        return EngineLayers(engine, False, names)
    layers = tuple(
        EngineLayer(
            _readable(str(entry.get("Name", ""))),
            str(entry.get("ParameterType") or entry.get("LayerType") or ""),
            _precisions(entry.get("Inputs", [])),
            _precisions(entry.get("Outputs", [])),
        )
        for entry in entries
    )
    return EngineLayers(engine, bool(layers), layers)
