"""NVIDIA ModelOpt's ONNX PTQ as a second INT8 quantizer (`--quantizer modelopt`), run in its own interpreter.

nvidia-modelopt[onnx] installs onnxruntime-gpu over onnxruntime and patches ONNX Runtime when imported, so
it never enters this process or its environment: `PYTHON -m modelopt.onnx.quantization` runs in the virtual
environment the user names (--modelopt-python, SEGDEPLOY_MODELOPT_PYTHON), on the CPU, calibrating on the
frames of the same calibration set, preprocessed here as for our quantizer and handed over as an .npz.
The arguments are those of that CLI's parser (modelopt/onnx/quantization/__main__.py in NVIDIA/Model-Optimizer,
0.47): int8 with `max` (our minmax) or `entropy` calibration (it has no percentile), --calibration_eps cpu,
--dq_only (weights stored as int8 with a DequantizeLinear, as ours are), --nodes_to_exclude (regular
expressions) for the nodes the accuracy guard keeps in float, and --high_precision_dtype fp32: this is
model.int8.onnx, the FP32-remainder graph the guard measures; its FP16-remainder twin for TensorRT >= 10
comes from the same converter as ours (precision/int8_fp16.py), so the two quantizers differ only in their
Q/DQ placement and scales. ModelOpt writes opset 19 whatever --opset says (measured with 0.47), so its
model.int8.onnx is past what TensorRT 8.x parses (opset 17).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SegdeployError
from ..files import atomic_path
from .int8 import FrameFeed
from .sensitivity import Requantize

QUANTIZERS = ("ours", "modelopt")
METHODS = {"minmax": "max", "entropy": "entropy"}  # ours -> ModelOpt's name; ModelOpt has no percentile for int8
VENV_HINT = (
    'make one with: python -m venv ~/.venvs/modelopt && ~/.venvs/modelopt/bin/pip install "nvidia-modelopt[onnx]"'
)
NO_PYTHON = (
    "--quantizer modelopt needs --modelopt-python PATH (or SEGDEPLOY_MODELOPT_PYTHON), the Python of a "
    f"virtual environment with nvidia-modelopt[onnx]; {VENV_HINT}"
)
VERSION_PROBE = "import importlib.metadata as m; print(m.version('nvidia-modelopt'))"


def last_line(text: str) -> str:
    """The last non-empty line of a subprocess's output (progress bars redraw with carriage returns)."""
    lines = [line.strip() for line in re.split(r"[\r\n]+", text) if line.strip()]
    return lines[-1] if lines else "no output"


def finish_graph(source: Path, target: Path) -> None:
    """Copy ModelOpt's graph without the initializers no node reads: its first scales and zero points,
    which ONNX Runtime warns about at every load."""
    import onnx

    def reads(graph: onnx.GraphProto) -> set[str]:
        names = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
        for attribute in (a for node in graph.node for a in node.attribute):
            for body in [attribute.g] if attribute.HasField("g") else attribute.graphs:
                names |= reads(body)
        return names

    model = onnx.load(str(source))
    graph = model.graph
    read = reads(graph)
    kept = [t for t in graph.initializer if t.name in read]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.save(model, str(target))


def check_method(method: str) -> None:
    if method not in METHODS:
        raise SegdeployError(f"--calib-method {method}: ModelOpt calibrates with {' or '.join(METHODS)} only")


@dataclass(frozen=True)
class ModelOpt:
    """An interpreter whose environment has nvidia-modelopt, and the version it has."""

    python: Path
    version: str

    @classmethod
    def find(cls, python: Path | None) -> ModelOpt:
        """Check that `python` runs and has nvidia-modelopt installed (a one-line error saying how to make one)."""
        if python is None:
            raise SegdeployError(NO_PYTHON)
        try:
            probe = subprocess.run(
                [str(python), "-c", VERSION_PROBE], capture_output=True, text=True, timeout=120, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            raise SegdeployError(f"--modelopt-python {python}: cannot run it ({reason}); {VENV_HINT}") from None
        if probe.returncode != 0:
            raise SegdeployError(f"--modelopt-python {python}: no nvidia-modelopt in its environment; {VENV_HINT}")
        return cls(python, probe.stdout.strip())

    def quantizer(self, method: str) -> Requantize:
        """A quantizer for guarded_int8: graph, target, calibration frames and the nodes to keep in float."""
        check_method(method)

        def run(source: Path, target: Path, feed: FrameFeed, exclude: list[str]) -> None:
            self.quantize(source, target, feed, METHODS[method], exclude)

        return run

    def quantize(self, source: Path, target: Path, feed: FrameFeed, method: str, exclude: list[str]) -> None:
        """ModelOpt's INT8 PTQ of `source` to `target`, calibrated on `feed`'s frames; everything it writes
        (its own temporary files included, through TMPDIR) stays in a temporary folder removed afterwards."""
        with tempfile.TemporaryDirectory(prefix="segdeploy-modelopt-") as scratch:
            work = Path(scratch)
            graph, data, output = work / "model.onnx", work / "calibration.npz", work / "model.int8.onnx"
            shutil.copyfile(source, graph)
            frames = np.concatenate([feed.calibration.feed(f, feed.meta.io) for f in feed.frames])
            arrays: dict[str, Any] = {feed.input_name: frames}  # plain numeric: nothing pickled
            np.savez(data, **arrays)
            shape = "x".join(str(d) for d in (1, *frames.shape[1:]))
            args = [
                "--onnx_path", str(graph), "--quantize_mode", "int8", "--calibration_method", method,
                "--calibration_data_path", str(data), "--calibration_shapes", f"{feed.input_name}:{shape}",
                "--calibration_eps", "cpu", "--high_precision_dtype", "fp32", "--dq_only",
                "--output_path", str(output), "--log_level", "ERROR",
            ]  # fmt: skip
            if exclude:
                args += ["--nodes_to_exclude", *(f"^{re.escape(name)}$" for name in exclude)]
            env = {**os.environ, "TMPDIR": str(work)}
            done = subprocess.run(
                [str(self.python), "-m", "modelopt.onnx.quantization", *args],
                capture_output=True, text=True, env=env, cwd=work, check=False,
            )  # fmt: skip
            if done.returncode != 0 or not output.is_file():
                reason = last_line(done.stderr or done.stdout)
                raise SegdeployError(f"{self.python}: ModelOpt {self.version} quantization failed ({reason})")
            with atomic_path(target) as tmp:
                finish_graph(output, tmp)
