"""The faults a real GPU would show in the TensorRT path (issue: Hardware), each on the strict stand-ins
(tests/fixtures/fake_cuda.py, fake_tensorrt.py; the `fake_trt` fixture checks after every test that
no thread holds a context and every TensorRT object was released in order, with a context)."""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from segdeploy.backends import open_backend
from segdeploy.backends.base import ClosedError
from segdeploy.backends.onnxruntime_backend import OnnxRuntimeBackend
from segdeploy.data.calibration import write_calibration_set
from segdeploy.errors import SegdeployError
from segdeploy.export.pipeline import export_artifacts
from segdeploy.meta import IOSpec
from segdeploy.quantize.pipeline import PrecisionOptions
from segdeploy.tensorrt.sidecar import read_engine_manifest

from .fixtures import fake_cuda
from .helpers import on_threads, tiny_recipe


def _export(out: Path, io: IOSpec = IOSpec()):
    recipe = tiny_recipe().replace(architecture="tests.fixtures.user_models:tiny", encoder=None)
    precision = PrecisionOptions(fp16=not io.fold_preprocess)
    return export_artifacts(recipe, None, out, io, precision=precision, log=lambda _: None)


@pytest.fixture()
def exported(tmp_path):
    return _export(tmp_path / "export")


def _frames(count: int = 2, height: int = 64, width: int = 96, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(count, height, width, 3), dtype=np.uint8)


def _build(onnx: Path, **options):
    from segdeploy.tensorrt.build import build_engine
    from segdeploy.tensorrt.options import BuildOptions

    return build_engine(onnx, options=BuildOptions(**options), log=lambda _: None)


# --- the CUDA context -------------------------------------------------------------------------------


def test_no_context_is_left_on_the_stack_after_open_or_a_call(fake_trt, exported):
    engine = _build(exported.onnx).engine
    assert fake_cuda.CURRENT.leftover() == []  # the build popped what it pushed
    backend = open_backend(engine, device="cuda:0")
    assert fake_cuda.CURRENT.leftover() == []
    backend.run(_frames())
    assert fake_cuda.CURRENT.leftover() == []
    backend.close()


def test_a_forgotten_backend_is_released_in_order(fake_trt, exported):
    engine = _build(exported.onnx).engine
    backend = open_backend(engine, device="cuda:0", cuda_graph=True)
    backend.run(_frames())
    backend.run(_frames())
    del backend
    gc.collect()
    assert set(fake_cuda.CURRENT.live().values()) == {0}
    assert list(fake_trt.STATE.live) == [] and fake_trt.STATE.problems == []


def test_close_releases_in_order_is_idempotent_and_use_after_close_is_one_line(fake_trt, exported):
    engine = _build(exported.onnx).engine
    backend = open_backend(engine, device="cuda:0", cuda_graph=True)
    backend.run(_frames())
    backend.close()
    backend.close()
    gc.collect()
    assert set(fake_cuda.CURRENT.live().values()) == {0} and list(fake_trt.STATE.live) == []
    with pytest.raises(ClosedError, match=r"model.plan \[cuda graph\]: this backend was closed"):
        backend.run(_frames())


def test_builder_objects_are_released_after_the_build(fake_trt, exported):
    _build(exported.onnx)
    gc.collect()
    assert list(fake_trt.STATE.live) == [] and fake_trt.STATE.problems == []


# --- threads ----------------------------------------------------------------------------------------


def test_an_engine_opened_on_one_thread_runs_on_others(fake_trt, exported):
    from segdeploy.runtime import Segmenter

    engine = _build(exported.onnx).engine
    segment = Segmenter(engine)
    reference = OnnxRuntimeBackend(exported.onnx)
    results: dict[int, bool] = {}
    errors: list[str] = []

    def camera(seed: int) -> None:
        try:
            for _ in range(5):
                frames = _frames(seed=seed)
                results[seed] = bool((segment(frames) == reference.run(frames).argmax(1)).all())
        except Exception as exc:  # the thread's failure becomes the test's
            errors.append(f"{type(exc).__name__}: {exc}")

    on_threads(camera)
    assert errors == [] and results == {1: True, 2: True, 3: True}
    segment.close()


# --- DLA --------------------------------------------------------------------------------------------


def test_dla_engines_build_with_builder_flags_and_run_at_their_one_shape(fake_trt, exported):
    from segdeploy.runtime import Segmenter

    result = _build(exported.reduced["model.fp16.onnx"], dla_core=1)
    build = fake_trt.STATE.builds[-1]
    assert build["flags"] == 0 and build["builder_flags"][0] == "FP16"  # not STRONGLY_TYPED on 10.x
    accepted = read_engine_manifest(result.engine).raw["accepted_shapes"]
    recipe = tiny_recipe()
    assert accepted == [[recipe.export.batch[1], 3, recipe.export.height[1], recipe.export.width[1]]]
    segment = Segmenter(result.engine)
    assert segment.backend.trt.runtime.DLA_core == 1  # set before deserializing
    frames = _frames(3, 96, 128)  # inside the recipe's ranges, not the DLA engine's one shape
    classes = segment(frames)
    assert classes.shape == (3, 96, 128)
    segment.close()


def test_dla_on_tensorrt_11_is_refused_in_one_line(fake_trt, exported):
    fake_trt.configure("11.0.0")
    with pytest.raises(SegdeployError, match="TensorRT 11.0.0 has no DLA support") as caught:
        _build(exported.reduced["model.fp16.onnx"], dla_core=0)
    assert "\n" not in str(caught.value)


# --- CUDA graphs ------------------------------------------------------------------------------------


def test_a_failed_capture_falls_back_to_plain_enqueue_with_one_warning(fake_trt, exported, capsys):
    engine = _build(exported.onnx).engine
    fake_trt.STATE.capture_breaks = True  # an engine with data-dependent shapes, a synchronising plugin
    backend = open_backend(engine, device="cuda:0", cuda_graph=True)
    reference = OnnxRuntimeBackend(exported.onnx)
    for seed in range(3):
        np.testing.assert_allclose(backend.run(_frames(seed=seed)), reference.run(_frames(seed=seed)), atol=1e-6)
    warnings = [line for line in capsys.readouterr().err.splitlines() if "CUDA graph" in line]
    assert len(warnings) == 1 and "plain enqueue" in warnings[0]
    assert fake_cuda.CURRENT.launches == 0 and fake_cuda.CURRENT.leftover() == []
    backend.close()


# --- INT8 calibration -------------------------------------------------------------------------------


def test_folded_preprocessing_models_calibrate_with_fp32_batches(fake_trt, tmp_path, tiny_data):
    folded = _export(tmp_path / "folded", IOSpec(fold_preprocess=True))
    calibration = write_calibration_set(tmp_path / "calib", tiny_data, num=8)
    result = _build(folded.onnx, precision="int8", calibration=calibration.directory, calib_batch=4)
    assert len(fake_trt.STATE.calibration_batches) == 2
    assert read_engine_manifest(result.engine).raw["build"]["calibration"]["batches"] == 2


def test_the_calibration_cache_is_reused_only_for_the_same_key(fake_trt, exported, tiny_data, tmp_path):
    calibration = write_calibration_set(tmp_path / "calib", tiny_data, num=8)
    options = {"precision": "int8", "calibration": calibration.directory, "calib_batch": 4, "force": True}
    first = _build(exported.onnx, **options)
    key = json.loads(first.calibration_cache.with_name(first.calibration_cache.name + ".key.json").read_text())
    assert {"onnx_sha256", "calibration_set", "method", "batch", "tensorrt"} <= set(key)

    def reused(result) -> bool:
        return read_engine_manifest(result.engine).raw["build"]["calibration"]["cache_reused"]

    assert not reused(first) and reused(_build(exported.onnx, **options))
    assert not reused(_build(exported.onnx, **{**options, "calib_batch": 2}))  # another batch: calibrate again
    fake_trt.configure("10.4.0.26")
    assert not reused(_build(exported.onnx, **options))  # another TensorRT: calibrate again


def test_a_stale_cache_without_its_key_is_not_reused(fake_trt, exported, tiny_data, tmp_path):
    calibration = write_calibration_set(tmp_path / "calib", tiny_data, num=8)
    options = {"precision": "int8", "calibration": calibration.directory, "calib_batch": 4}
    first = _build(exported.onnx, **options)
    first.calibration_cache.with_name(first.calibration_cache.name + ".key.json").unlink()
    again = _build(exported.onnx, **{**options, "force": True})
    assert read_engine_manifest(again.engine).raw["build"]["calibration"]["cache_reused"] is False


# --- precision constraints --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "graph", "request_"), [("8.5.2.2", "model.fp16.onnx", None), ("10.3.0.30", "model.onnx", "fp16")]
)
def test_fp16_builds_obey_the_fp32_block_list(fake_trt, exported, version, graph, request_):
    fake_trt.configure(version)
    source = exported.onnx if graph == "model.onnx" else exported.reduced[graph]
    _build(source, precision=request_, force=True)
    build = fake_trt.STATE.builds[-1]
    assert "OBEY_PRECISION_CONSTRAINTS" in build["builder_flags"]
    pinned = {kind for _, kind, pinned in build["layers"] if pinned}
    assert "RESIZE" in pinned and "CONVOLUTION" not in pinned


def test_strongly_typed_builds_take_no_precision_constraints(fake_trt, exported):
    _build(exported.reduced["model.fp16.onnx"])
    build = fake_trt.STATE.builds[-1]
    assert build["builder_flags"] == [] and not any(pinned for *_, pinned in build["layers"])


# --- one-line errors --------------------------------------------------------------------------------


def test_every_parser_error_is_reported(fake_trt, exported):
    fake_trt.STATE.parser_errors = [("Unsupported operator NonMaxSuppression", 4), ("Invalid shape", 9)]
    with pytest.raises(SegdeployError) as caught:
        _build(exported.onnx)
    message = str(caught.value)
    assert "2 errors" in message and "NonMaxSuppression (node 4)" in message and "Invalid shape (node 9)" in message
    assert "\n" not in message


def test_no_execution_context_is_an_out_of_memory_line(fake_trt, exported):
    engine = _build(exported.onnx).engine
    fake_trt.STATE.out_of_memory = True
    with pytest.raises(SegdeployError, match="model.plan: TensorRT could not create an execution context") as caught:
        open_backend(engine, device="cuda:0")
    assert "out of GPU memory" in str(caught.value) and "\n" not in str(caught.value)


def test_an_unknown_tensorrt_dtype_is_one_line(fake_trt, exported, monkeypatch):
    original = fake_trt.Tensor.__init__

    def fp8_input(self, value):
        original(self, value)
        if value.name == "input":
            self.dtype = fake_trt.DataType.FP8

    monkeypatch.setattr(fake_trt.Tensor, "__init__", fp8_input)
    with pytest.raises(SegdeployError, match="model.onnx: input 'input' is FP8, which segdeploy cannot feed"):
        _build(exported.onnx)


def test_tensorrt_stubs_alone_are_not_tensorrt(tmp_path, monkeypatch):
    from segdeploy.tensorrt import tensorrt_available

    stubs = tmp_path / "site"
    (stubs / "tensorrt").mkdir(parents=True)
    (stubs / "tensorrt" / "__init__.pyi").write_text("def __getattr__(name: str): ...\n")  # tensorrt-stubs
    (stubs / "pycuda").mkdir()
    (stubs / "pycuda" / "__init__.py").write_text("")  # a CUDA binding is there
    monkeypatch.syspath_prepend(str(stubs))
    monkeypatch.delitem(sys.modules, "tensorrt", raising=False)
    assert tensorrt_available() is False


# --- the stand-in itself refuses what TensorRT refuses ----------------------------------------------


def test_the_stand_in_refuses_builds_tensorrt_refuses(fake_trt, exported):
    from segdeploy.cuda import CudaSession

    trt = fake_trt.tensorrt
    errors: list[str] = []

    class Logger(trt.ILogger):
        def log(self, severity, msg):
            errors.append(msg)

    def build(flags: int, dla: bool, low: tuple, high: tuple):
        with CudaSession(0) as cuda, cuda.current():
            builder = trt.Builder(Logger())
            network = builder.create_network(flags)
            parser = trt.OnnxParser(network, builder.logger)
            assert parser.parse_from_file(str(exported.onnx))
            config = builder.create_builder_config()
            profile = builder.create_optimization_profile()
            profile.set_shape("input", low, low, high)
            config.add_optimization_profile(profile)
            if dla:
                config.default_device_type, config.DLA_core = trt.DeviceType.DLA, 0
            result = builder.build_serialized_network(network, config)
            del config, parser, network, builder, profile
            return result

    static, dynamic = (1, 3, 64, 96), (2, 3, 128, 128)
    assert build(1 << 1, True, static, static) is None and "strongly typed" in errors[-1]  # DLA on 10.x
    assert build(0, True, static, dynamic) is None and "dynamic shapes" in errors[-1]
    assert build(0, False, (1, 64, 96, 3), (1, 64, 96, 3)) is None and "do not fit input" in errors[-1]  # NHWC
    assert build(0, True, static, static) is not None
