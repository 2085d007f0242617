"""Which way an engine is built on a given TensorRT version. Pure logic, tested without TensorRT.

- TensorRT >= 10: the ONNX graph carries every precision decision (FP32, FP16 or Q/DQ INT8) and the
  network is created STRONGLY_TYPED. TensorRT 11 accepts nothing else: it removed BuilderFlag.FP16/INT8
  and the INT8 calibrator.
- TensorRT 8.5, 8.6 and 10.x (JetPack 5 = 8.5, JetPack 6 = 10.3) also build from the FP32 graph with
  builder flags: FP16, or INT8 with the implicit entropy calibrator and a calibration cache.
- On 8.x a typed graph is still built with flags: an FP16 graph needs the FP16 flag, a Q/DQ graph INT8.
- With builder flags, tensor types are only hints: a build that enables FP16 also sets
  OBEY_PRECISION_CONSTRAINTS (8.2-10.x) so the layers segdeploy pins to FP32 (constraints.py) stay there.
  A strongly typed network obeys its types and takes no precision flags.
- The ONNX parser of TensorRT 8.5/8.6 takes operators up to opset 17 (onnx-tensorrt's operators.md for
  release/8.5-GA and 8.6: "supports operators up to Opset 17"; 9.2 reached 19). The INT8 graph with its
  float remainder in FP16 (model.int8-fp16.onnx, opset 19 for FP16 Q/DQ scales) is for TensorRT >= 10;
  8.x builds model.int8.onnx with the INT8 and FP16 flags, which gives its remainder FP16 too.
- DLA (Jetson AGX/NX Xavier and Orin): TensorRT 10.x does not run strongly typed networks on DLA, so a
  DLA build takes the builder-flag path on every version that has it; TensorRT 11 has no builder
  precision flags, so DLA is refused there (NVIDIA brings DLA back in TensorRT 11.4.1 on AGX Orin under
  JetPack 7.2.2 or later, per its TensorRT 10.x-to-11.x Jetson migration notes; segdeploy does not build
  for it yet).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import SegdeployError
from ..precision_table import FP32, INT8, PRECISIONS, REDUCED

OLDEST = (8, 5)


@dataclass(frozen=True, order=True)
class TrtVersion:
    major: int
    minor: int
    patch: int = 0

    @classmethod
    def parse(cls, text: str) -> TrtVersion:
        match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
        if match is None:
            raise SegdeployError(f"TensorRT version '{text}': expected MAJOR.MINOR[.PATCH]")
        return cls(int(match[1]), int(match[2]), int(match[3] or 0))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @property
    def strongly_typed(self) -> bool:
        """NetworkDefinitionCreationFlag.STRONGLY_TYPED exists from TensorRT 10.0."""
        return self.major >= 10

    @property
    def builder_flags(self) -> bool:
        """BuilderFlag.FP16/INT8 and the INT8 calibrators exist up to TensorRT 10.x."""
        return self.major <= 10

    @property
    def explicit_batch_flag(self) -> bool:
        """8.x needs NetworkDefinitionCreationFlag.EXPLICIT_BATCH for ONNX; 10.0 ignores it, 11 removed it."""
        return self.major < 10

    @property
    def max_opset(self) -> int | None:
        """The newest ONNX opset the bundled parser takes, where segdeploy's graphs can exceed it."""
        return 17 if self.major < 10 else None

    @property
    def progress_monitor(self) -> bool:
        """IBuilderConfig.progress_monitor / IProgressMonitor exist from TensorRT 10.0."""
        return self.major >= 10


@dataclass(frozen=True)
class BuildPlan:
    """How to build: network creation flags, builder precision flags, whether to calibrate."""

    mode: str  # "strongly-typed" or "builder-flags"
    precision: str  # the engine's precision: fp32, fp16 or int8
    network_flags: tuple[str, ...]  # NetworkDefinitionCreationFlag names
    builder_flags: tuple[str, ...]  # BuilderFlag names
    calibrate: bool  # implicit INT8 calibration from a calibration set


def plan_build(
    version: TrtVersion, graph_precision: str, request: str | None, subject: str, dla: bool = False, opset: int = 17
) -> BuildPlan:
    """The build for a graph of `graph_precision` ("fp32", "fp16", "int8" for Q/DQ) at `opset`. `request` is
    None to build the graph as it is typed, or "fp16"/"int8" for the builder-flag path from an FP32 graph."""
    if dla and (request or graph_precision) == FP32.name:
        raise SegdeployError(
            f"{subject}: DLA runs FP16 and INT8 only; build model.fp16.onnx, or this graph with --fp16"
        )
    if graph_precision not in PRECISIONS:
        raise SegdeployError(f"{subject}: unknown graph precision '{graph_precision}'")
    if (version.major, version.minor) < OLDEST:
        raise SegdeployError(
            f"{subject}: TensorRT {version} is older than 8.5, the oldest segdeploy supports (JetPack 5 ships 8.5)"
        )
    if dla and not version.builder_flags:
        raise SegdeployError(
            f"{subject}: TensorRT {version} has no DLA support in segdeploy (its DLA builds use builder "
            "precision flags, which TensorRT 11 removed); DLA engines need TensorRT 8.5-10.x (JetPack 5 or 6)"
        )
    if version.max_opset is not None and opset > version.max_opset:
        if graph_precision != INT8.name:
            remedy = f"export with --opset {version.max_opset}"
        elif Path(subject).name != INT8.graph_file:
            remedy = f"build {INT8.graph_file} beside it"
        else:  # ModelOpt writes opset 19 whatever --opset says
            remedy = (
                f"export it with --quantizer ours at --opset {version.max_opset}, or build model.onnx --int8 --calib"
            )
        raise SegdeployError(
            f"{subject}: opset {opset}, and TensorRT {version}'s ONNX parser takes opsets up to "
            f"{version.max_opset}; {remedy}"
        )
    network = ("EXPLICIT_BATCH",) if version.explicit_batch_flag else ()
    if request is None:
        if version.strongly_typed and not dla:
            return BuildPlan("strongly-typed", graph_precision, ("STRONGLY_TYPED",), (), False)
        flags = PRECISIONS[graph_precision].typed_flags
        return BuildPlan("builder-flags", graph_precision, network, flags, False)
    requestable = {p.name: p for p in REDUCED}
    if request not in requestable:
        raise SegdeployError(f"{subject}: precision '{request}': choose {' or '.join(requestable)}")
    if graph_precision != FP32.name:
        raise SegdeployError(
            f"{subject}: this graph is already {graph_precision}; build it without --fp16/--int8 "
            "(builder precision flags apply to the FP32 model.onnx)"
        )
    if not version.builder_flags:
        raise SegdeployError(
            f"{subject}: TensorRT {version} has no builder precision flags or INT8 calibrator; build "
            f"model.{request}.onnx instead (segdeploy export --{request})"
        )
    wanted = requestable[request]
    return BuildPlan("builder-flags", wanted.name, network, wanted.request_flags, wanted.calibrates)


def graphs_to_build(version: TrtVersion, graphs: list[Path], dla: bool = False) -> list[Path]:
    """Of an export's graphs, the ones to build on `version`: one INT8 graph, the FP16-remainder twin where
    builds are strongly typed, model.int8.onnx (flags INT8 + FP16) where they are not."""
    names = {graph.name for graph in graphs}
    if INT8.graph_file not in names or INT8.strongly_typed_file not in names:
        return graphs
    skip = INT8.graph_file if version.strongly_typed and not dla else INT8.strongly_typed_file
    return [graph for graph in graphs if graph.name != skip]
