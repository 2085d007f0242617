"""The schema of manifest.json, version 1 (`segdeploy.manifest/1`). Artifact entries are open: every
entry has a kind, a sha256 and a size; the fields some kinds add are checked when present, and fields
this version does not know (a newer writer's) are kept."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from ..schema import Closed, Digest, ModelFacts, Open


class TensorSignature(Closed):
    name: str
    shape: list[int | str]
    dtype: str


class ArtifactEntry(Open):
    kind: str
    sha256: Digest
    bytes: Annotated[int, Field(ge=0)]
    precision: str | None = None
    opset: int | None = None
    inputs: list[TensorSignature] | None = None
    outputs: list[TensorSignature] | None = None
    source: str | None = None
    sidecar: str | None = None


class SourceCheckpoint(Closed):
    path: str
    sha256: Digest


class Preprocessing(Open):
    in_graph: bool
    input: str
    mean: Annotated[list[float], Field(min_length=3, max_length=3)]
    std: Annotated[list[float], Field(min_length=3, max_length=3)]


class ManifestV1(Open):
    format: Literal["segdeploy.manifest/1"]
    created: str
    versions: dict[str, str]
    source_checkpoint: SourceCheckpoint | None
    model: ModelFacts
    preprocessing: Preprocessing
    output: str
    dynamic_shapes: dict[str, Annotated[list[int], Field(min_length=3, max_length=3)]]
    artifacts: dict[str, ArtifactEntry]
