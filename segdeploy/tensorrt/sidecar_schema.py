"""The schema of an engine's sidecar manifest, version 1 (`segdeploy.engine/1`); keys added after the
build (the speed gate's) and by newer writers are kept."""

from __future__ import annotations

from typing import Literal

from ..schema import Closed, Digest, ModelFacts, Open


class Gpu(Closed):
    name: str
    compute_capability: str
    memory_mb: int


class Build(Open):
    mode: str
    network_flags: list[str]
    builder_flags: list[str]
    dla_core: int | None = None


class OnnxSource(Closed):
    path: str
    sha256: Digest


class Tensor(Closed):
    name: str
    mode: Literal["input", "output"]
    dtype: str
    shape: list[int]


class Profile(Closed):
    name: str
    min: list[int]
    opt: list[int]
    max: list[int]


class SidecarV1(Open):
    format: Literal["segdeploy.engine/1"]
    created: str
    tensorrt: str
    gpu: Gpu
    precision: str
    build: Build
    onnx: OnnxSource
    engine_sha256: Digest
    tensors: list[Tensor]
    profile: Profile
    accepted_shapes: list[list[int]] | None = None
    preprocessing: Open
    model: ModelFacts
