"""The backend contract: every backend (PyTorch, ONNX Runtime FP32/FP16/INT8, the TensorRT stand-in) takes
the same frames, returns logits or class maps as its artifact says, refuses shapes it does not accept
before running, closes idempotently, fails clearly after close, and reports settings, timings and memory.
And the runtime imports neither torch, onnx nor PyYAML."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from segdeploy.backends import open_backend
from segdeploy.backends.base import Backend, ClosedError
from segdeploy.data.calibration import write_calibration_set
from segdeploy.export.pipeline import ExportResult, export_artifacts
from segdeploy.meta import STRIDE, UNBOUNDED, AcceptedShapes, IOSpec, ShapeError
from segdeploy.quantize.pipeline import PrecisionOptions

from .conftest import REPO
from .helpers import needs_native_bf16, needs_openvino, tiny_recipe

OPENVINO = [
    pytest.param(case, marks=needs_openvino) for case in ("openvino-fp32", "openvino-fp16", "openvino-int8")
] + [pytest.param("openvino-bf16", marks=needs_native_bf16)]
CASES = ["pytorch", "onnx-fp32", "onnx-fp16", "onnx-int8", "tensorrt-standin", *OPENVINO]
PRECISION = {
    "pytorch": "fp32",
    "onnx-fp32": "fp32",
    "onnx-fp16": "fp16",
    "onnx-int8": "int8",
    "openvino-fp32": "fp32",
    "openvino-fp16": "fp16",
    "openvino-int8": "int8",
    "openvino-bf16": "bf16",
}
GRAPH = {"openvino-bf16": "fp32"}  # BF16 runs the FP32 graph
OPTIONS = {case: {"backend": "openvino"} for case in ("openvino-fp32", "openvino-fp16", "openvino-int8")}
OPTIONS["openvino-bf16"] = {"backend": "openvino", "inference_precision": "bf16"}
FRAMES = np.random.default_rng(0).integers(0, 256, size=(2, 64, 96, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def exports(tiny_data, tmp_path_factory) -> dict[str, ExportResult]:
    """An untrained user model exported twice with FP16 and INT8 graphs: returning logits from float NCHW,
    and returning class maps with preprocessing folded in (uint8 NHWC)."""
    calibration = write_calibration_set(tmp_path_factory.mktemp("calib") / "set", tiny_data, num=8)
    recipe = tiny_recipe().replace(architecture="tests.fixtures.user_models:tiny", encoder=None)
    options = PrecisionOptions(fp16=True, calibration=calibration.directory, method="minmax", max_miou_drop=1.0)
    return {
        name: export_artifacts(
            recipe, None, tmp_path_factory.mktemp(name), io=io, precision=options, log=lambda _: None
        )
        for name, io in (("logits", IOSpec()), ("argmax", IOSpec(fold_preprocess=True, argmax=True)))
    }


def artifact(case: str, export: ExportResult, request: pytest.FixtureRequest) -> Path:
    """The file a case opens; the TensorRT stand-in builds an engine from the FP32 graph."""
    if case == "tensorrt-standin":
        request.getfixturevalue("fake_trt")
        from segdeploy.tensorrt.build import build_engine
        from segdeploy.tensorrt.options import BuildOptions

        return build_engine(export.onnx, options=BuildOptions(force=True), log=lambda _: None).engine
    if case == "pytorch":
        return export.checkpoint
    graph = GRAPH.get(case, PRECISION[case])
    return export.onnx if graph == "fp32" else export.reduced[f"model.{graph}.onnx"]


def opened(case: str, export: ExportResult, request: pytest.FixtureRequest) -> Backend:
    """The case's artifact opened with the backend (and inference precision) it names."""
    return open_backend(artifact(case, export, request), **OPTIONS.get(case, {}))


@pytest.fixture(params=CASES)
def backend(request, exports):
    with opened(request.param, exports["logits"], request) as backend:
        yield backend


@pytest.mark.parametrize("case", CASES)
def test_same_frames_in_logits_or_class_maps_out(case, exports, request):
    for io, export in exports.items():
        with opened(case, export, request) as backend:
            assert isinstance(backend, Backend)
            output = backend.run(FRAMES)
            assert backend.meta.io.argmax == (io == "argmax")
            assert backend.precision == PRECISION.get(case, "fp32")
            if io == "argmax":
                assert output.dtype == np.int32 and output.shape == (2, 64, 96)
                assert 0 <= output.min() and output.max() < backend.meta.num_classes
            else:
                assert output.dtype == np.float32 and output.shape == (2, backend.meta.num_classes, 64, 96)
                assert np.isfinite(output).all()


def test_shapes_outside_the_accepted_ones_are_refused_before_running(backend, monkeypatch):
    def never(feed):
        raise AssertionError("ran a shape it does not accept")

    monkeypatch.setattr(backend, "_infer", never)
    accepted = backend.accepted_shapes()
    refused = [
        np.zeros((1, 50, 70, 3), np.uint8),
        np.zeros((1, 64, 96, 3), np.float32),
        np.zeros((64, 96, 3), np.uint8),
    ]
    if accepted.batch[1] < UNBOUNDED:
        refused.append(np.zeros((accepted.batch[1] + 1, 64, 96, 3), np.uint8))
    for frames in refused:
        with pytest.raises(ShapeError) as error:
            backend.run(frames)
        message = str(error.value)
        assert message.startswith(f"{backend.label}: ") and "\n" not in message


def test_accepted_shapes_come_from_the_engine_profile_or_the_model(backend):
    if backend.name == "tensorrt":  # the profile is the recipe's export ranges
        assert backend.accepted_shapes() == AcceptedShapes((1, 8), (32, 512), (32, 512))
    else:  # dynamic axes in the ONNX graph, any multiple of the stride in PyTorch
        assert backend.accepted_shapes() == AcceptedShapes((1, UNBOUNDED), (STRIDE, UNBOUNDED), (STRIDE, UNBOUNDED))


@pytest.mark.parametrize("case", CASES)
def test_close_is_idempotent_and_use_after_close_fails(case, exports, request):
    with opened(case, exports["logits"], request) as backend:
        backend.run(FRAMES)
    backend.close()
    for use in (lambda: backend.run(FRAMES), lambda: backend.prepare(FRAMES), lambda: backend.infer(None)):
        with pytest.raises(ClosedError, match=re.escape(f"{backend.label}: this backend was closed")):
            use()
    with pytest.raises(ClosedError), backend:
        pass


def test_settings_timings_and_memory(backend):
    backend.run(FRAMES)
    settings = backend.settings()
    assert settings and json.loads(json.dumps(settings)) == settings
    timings = backend.timings()
    if backend.name == "tensorrt":  # CUDA events split the copies from compute
        assert timings is not None and set(timings) == {"prepare", "h2d", "compute", "d2h"}
        assert all(isinstance(ms, float) and ms >= 0 for ms in timings.values())
    else:  # on the CPU nothing splits
        assert timings is None
    memory = backend.memory()
    assert set(memory) == {"host_bytes", "device_bytes"} and memory["host_bytes"] > 0
    device = memory["device_bytes"]
    assert device > 0 if backend.name == "tensorrt" else device == 0


RUNTIME_SCRIPT = """
import sys
from tests.fixtures import fake_cuda, fake_tensorrt
sys.modules.update(fake_tensorrt.MODULES)
fake_tensorrt.configure("10.3.0.30")
import segdeploy.cuda.select
segdeploy.cuda.select.load_driver = lambda: fake_cuda.CURRENT
import numpy as np
from segdeploy.runtime import Segmenter
for path in sys.argv[1:]:
    with Segmenter(path) as segment:
        print(segment(np.zeros((64, 96, 3), np.uint8)).shape)
print(sorted(name for name in ("torch", "onnx", "yaml") if name in sys.modules))
"""


def test_the_runtime_imports_neither_torch_nor_onnx_nor_yaml(exports, fake_trt):
    from segdeploy.tensorrt.build import build_engine
    from segdeploy.tensorrt.options import BuildOptions

    export = exports["logits"]
    engine = build_engine(export.onnx, options=BuildOptions(force=True), log=lambda _: None).engine
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", RUNTIME_SCRIPT, str(export.onnx), str(engine)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["(64, 96)", "(64, 96)", "[]"]
