"""TensorRT: version dispatch, profiles, sidecar manifests, calibration feeding, builder progress, the
torch-free runtime and the messages without TensorRT. Tests that need TensorRT or CUDA are marked and skip."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from segdeploy.artifacts.manifest import read_manifest
from segdeploy.backends import cuda_index, open_backend
from segdeploy.backends.onnxruntime_backend import OnnxRuntimeBackend
from segdeploy.cli import app
from segdeploy.data.calibration import write_calibration_set
from segdeploy.data.spec import load_dataset_spec
from segdeploy.errors import SegdeployError
from segdeploy.export.pipeline import export_artifacts
from segdeploy.meta import IOSpec, ModelMeta
from segdeploy.parity import ParityOptions, run_parity
from segdeploy.tensorrt import tensorrt_available
from segdeploy.tensorrt.feeding import batch_count, calibration_batches
from segdeploy.tensorrt.profiles import calibration_profile, input_profile
from segdeploy.tensorrt.progress import PhaseTracker
from segdeploy.tensorrt.sidecar import (
    GpuFacts,
    TensorFacts,
    check_loadable,
    engine_manifest,
    read_engine_manifest,
    register_engine,
    sidecar_path,
)
from segdeploy.tensorrt.types import dims_list, numpy_dtype
from segdeploy.tensorrt.versions import TrtVersion, graphs_to_build, plan_build

from .fixtures import fake_cuda
from .helpers import one_line_error, tiny_recipe

OBEY = "OBEY_PRECISION_CONSTRAINTS"

needs_gpu_tensorrt = pytest.mark.skipif(
    not (tensorrt_available() and torch.cuda.is_available()),
    reason="needs a CUDA GPU with TensorRT and a CUDA binding (cuda-bindings or pycuda)",
)


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    """An untrained user model exported to ONNX (FP32 and FP16), in seconds."""
    recipe = tiny_recipe().replace(architecture="tests.fixtures.user_models:tiny", encoder=None)
    out = tmp_path_factory.mktemp("trt-export")
    from segdeploy.quantize.pipeline import PrecisionOptions

    return export_artifacts(recipe, None, out, precision=PrecisionOptions(fp16=True), log=lambda _: None)


def _meta(fold: bool = False):
    recipe = tiny_recipe()
    return ModelMeta(recipe, ["soil", "crop", "weed"], [(0, 0, 0), (0, 255, 0), (255, 0, 0)], IOSpec(fold, False))


# --- version dispatch -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "graph", "request_", "mode", "network", "flags", "calibrate"),
    [
        ("10.13.0.35", "fp16", None, "strongly-typed", ("STRONGLY_TYPED",), (), False),
        ("11.0.0", "int8", None, "strongly-typed", ("STRONGLY_TYPED",), (), False),
        ("10.3.0.30", "fp32", "fp16", "builder-flags", (), ("FP16", OBEY), False),
        ("10.3.0.30", "fp32", "int8", "builder-flags", (), ("INT8", "FP16", OBEY), True),
        ("8.5.2.2", "fp32", "int8", "builder-flags", ("EXPLICIT_BATCH",), ("INT8", "FP16", OBEY), True),
        ("8.5.2.2", "fp16", None, "builder-flags", ("EXPLICIT_BATCH",), ("FP16", OBEY), False),
        ("8.6.1", "int8", None, "builder-flags", ("EXPLICIT_BATCH",), ("INT8", "FP16", OBEY), False),
        ("8.6.1", "fp32", None, "builder-flags", ("EXPLICIT_BATCH",), (), False),
    ],
)
def test_build_plan_per_version(version, graph, request_, mode, network, flags, calibrate):
    plan = plan_build(TrtVersion.parse(version), graph, request_, "model.onnx")
    assert (plan.mode, plan.network_flags, plan.builder_flags, plan.calibrate) == (mode, network, flags, calibrate)
    assert plan.precision == (request_ or graph)


@pytest.mark.parametrize(
    ("version", "graph", "request_", "fragment"),
    [
        ("11.0.0", "fp32", "fp16", "build model.fp16.onnx instead"),
        ("11.2.1", "fp32", "int8", "no builder precision flags or INT8 calibrator"),
        ("10.3.0", "fp16", "int8", "already fp16"),
        ("8.4.3", "fp32", None, "older than 8.5"),
        ("10.3.0", "fp32", "bf16", "choose fp16 or int8"),
    ],
)
def test_build_plan_refusals(version, graph, request_, fragment):
    with pytest.raises(SegdeployError, match=fragment):
        plan_build(TrtVersion.parse(version), graph, request_, "model.onnx")


def test_tensorrt_8_refuses_graphs_above_opset_17_and_points_to_model_int8():
    with pytest.raises(SegdeployError, match=r"opset 19.*up to 17; build model\.int8\.onnx beside it"):
        plan_build(TrtVersion.parse("8.6.1"), "int8", None, "model.int8-fp16.onnx", opset=19)
    with pytest.raises(SegdeployError, match="with --quantizer ours at --opset 17, or build model.onnx --int8"):
        plan_build(TrtVersion.parse("8.6.1"), "int8", None, "exp/model.int8.onnx", opset=19)  # ModelOpt's
    with pytest.raises(SegdeployError, match="export with --opset 17"):
        plan_build(TrtVersion.parse("8.5.2"), "fp32", "fp16", "model.onnx", opset=18)
    assert (
        plan_build(TrtVersion.parse("10.3.0"), "int8", None, "model.int8-fp16.onnx", opset=19).mode == "strongly-typed"
    )


@pytest.mark.parametrize(
    ("version", "dla", "built"),
    [
        ("10.3.0", False, ["model.onnx", "model.fp16.onnx", "model.int8-fp16.onnx"]),
        ("11.0.0", False, ["model.onnx", "model.fp16.onnx", "model.int8-fp16.onnx"]),
        ("10.3.0", True, ["model.onnx", "model.fp16.onnx", "model.int8.onnx"]),
        ("8.5.2", False, ["model.onnx", "model.fp16.onnx", "model.int8.onnx"]),
    ],
)
def test_one_int8_graph_is_built_per_version(version, dla, built, tmp_path):
    graphs = [tmp_path / n for n in ("model.onnx", "model.fp16.onnx", "model.int8.onnx", "model.int8-fp16.onnx")]
    assert [g.name for g in graphs_to_build(TrtVersion.parse(version), graphs, dla)] == built
    assert graphs_to_build(TrtVersion.parse(version), graphs[:3], dla) == graphs[:3]
    # the U8S8 graph for ONNX Runtime on CPU (issue 22) is never a TensorRT build
    cpu = [*graphs, tmp_path / "model.int8-cpu.onnx"]
    assert [g.name for g in graphs_to_build(TrtVersion.parse(version), cpu, dla)] == built


def test_dla_needs_reduced_precision():
    with pytest.raises(SegdeployError, match="DLA runs FP16 and INT8 only"):
        plan_build(TrtVersion.parse("10.3.0"), "fp32", None, "model.onnx", dla=True)
    assert plan_build(TrtVersion.parse("8.5.2"), "fp32", "fp16", "model.onnx", dla=True).builder_flags == ("FP16", OBEY)
    typed = plan_build(TrtVersion.parse("10.3.0"), "fp16", None, "model.fp16.onnx", dla=True)
    assert typed.mode == "builder-flags" and typed.network_flags == ()  # DLA takes no strongly typed network
    with pytest.raises(SegdeployError, match="TensorRT 11.0.0 has no DLA support"):
        plan_build(TrtVersion.parse("11.0.0"), "fp16", None, "model.fp16.onnx", dla=True)


def test_version_parsing_and_features():
    assert TrtVersion.parse("10.3.0.30") == TrtVersion(10, 3, 0)
    assert TrtVersion.parse("8.6") < TrtVersion.parse("10.0.1")
    assert TrtVersion.parse("10.0.1").progress_monitor and not TrtVersion.parse("8.6.1").progress_monitor
    with pytest.raises(SegdeployError, match="expected MAJOR.MINOR"):
        TrtVersion.parse("ten")


# --- profiles, types, progress ----------------------------------------------------------------------


def test_profiles_follow_the_recipe_ranges_and_layout():
    meta = _meta()
    export = meta.recipe.export
    profile = input_profile(meta, "input")
    assert profile.min == (export.batch[0], 3, export.height[0], export.width[0])
    assert profile.opt == (export.batch[1], 3, export.height[1], export.width[1])
    assert profile.max == (export.batch[2], 3, export.height[2], export.width[2])
    folded = input_profile(_meta(fold=True), "frames")
    assert folded.max == (export.batch[2], export.height[2], export.width[2], 3)
    assert profile.problems((1, 3, 64, 96)) == []
    assert profile.problems((1, 3, 2048, 96)) == [
        f"dimension 2 is 2048, outside {export.height[0]}..{export.height[2]}"
    ]
    assert profile.problems((1, 64, 96)) == ["3 dimensions, the engine takes 4"]
    fixed = calibration_profile(meta, "input", 4, (64, 96))
    assert fixed.min == fixed.opt == fixed.max == (4, 3, 64, 96)


def test_tensorrt_types_without_tensorrt():
    class DataType:
        def __init__(self, name):
            self.name = name

    assert numpy_dtype(DataType("HALF")) == "float16" and numpy_dtype(DataType("INT32")) == "int32"
    with pytest.raises(ValueError, match="FP8"):
        numpy_dtype(DataType("FP8"))
    assert dims_list((-1, 3, -1, -1)) == [-1, 3, -1, -1]


def test_builder_phases_drive_a_progress_bar():
    seen = []
    tracker = PhaseTracker(lambda description, done, total: seen.append((description, done, total)))
    tracker.start("Building engine", "", 3)
    tracker.start("Tactic selection", "Building engine", 10)
    assert tracker.step("Tactic selection", 4)
    tracker.finish("Tactic selection")
    tracker.step("Building engine", 0)
    tracker.cancelled = True
    assert not tracker.step("Building engine", 1)  # False asks TensorRT to stop
    assert seen[1] == ("Building engine > Tactic selection", 0, 3)
    assert seen[-1] == ("Building engine", 2, 3)


# --- sidecar manifest -------------------------------------------------------------------------------


def _fake_engine(tmp_path: Path, export) -> Path:
    """A file standing in for an engine, with a sidecar as `segdeploy build` writes it."""
    from segdeploy.tensorrt.versions import BuildPlan

    engine = export.out_dir / "model.fp16.plan"
    engine.write_bytes(b"not really an engine")
    meta = OnnxRuntimeBackend(export.reduced["model.fp16.onnx"]).meta
    plan = BuildPlan("strongly-typed", "fp16", ("STRONGLY_TYPED",), (), False)
    tensors = [
        TensorFacts("input", "input", "float32", [-1, 3, -1, -1]),
        TensorFacts("logits", "output", "float32", [-1, 3, -1, -1]),
    ]
    manifest = engine_manifest(
        meta,
        plan,
        "10.3.0.30",
        GpuFacts("Orin", "8.7", 7620),
        tensors,
        input_profile(meta, "input"),
        export.reduced["model.fp16.onnx"],
        engine,
        {"workspace_mb": 2048},
    )
    sidecar_path(engine).write_text(json.dumps(manifest))
    register_engine(engine, export.reduced["model.fp16.onnx"], "fp16")
    return engine


def test_sidecar_round_trip_and_registration(tiny_export, tmp_path):
    engine = _fake_engine(tmp_path, tiny_export)
    manifest = read_engine_manifest(engine)
    assert (manifest.precision, manifest.mode, manifest.tensorrt) == ("fp16", "strongly-typed", "10.3.0.30")
    assert manifest.input.name == "input" and manifest.output.dtype == "float32"
    assert manifest.meta.class_names == OnnxRuntimeBackend(tiny_export.onnx).meta.class_names
    assert manifest.raw["onnx"]["path"] == "model.fp16.onnx" and len(manifest.raw["onnx"]["sha256"]) == 64
    assert manifest.raw["preprocessing"]["mean"] == list(manifest.meta.recipe.mean)
    entry = read_manifest(tiny_export.out_dir)["artifacts"]["model.fp16.plan"]
    assert entry["kind"] == "tensorrt" and entry["precision"] == "fp16" and entry["source"] == "model.fp16.onnx"
    check_loadable(manifest, engine, engine.read_bytes(), "10.3.0.30", GpuFacts("Jetson AGX Orin", "8.7", 30000))


@pytest.mark.parametrize(
    ("tensorrt", "gpu", "fragment"),
    [
        ("10.13.0.35", GpuFacts("Orin", "8.7", 7620), "built with TensorRT 10.3.0.30, this machine has 10.13.0.35"),
        ("10.3.0.30", GpuFacts("NVIDIA H100", "9.0", 80000), "built for Orin (compute capability 8.7)"),
    ],
)
def test_engines_from_another_tensorrt_or_gpu_are_refused(tiny_export, tmp_path, tensorrt, gpu, fragment):
    engine = _fake_engine(tmp_path, tiny_export)
    with pytest.raises(SegdeployError, match="rebuild it here: segdeploy build model.fp16.onnx") as caught:
        check_loadable(read_engine_manifest(engine), engine, engine.read_bytes(), tensorrt, gpu)
    assert fragment in str(caught.value)


def test_sidecar_problems_are_one_line_errors(tiny_export, tmp_path):
    engine = _fake_engine(tmp_path, tiny_export)
    manifest = read_engine_manifest(engine)
    engine.write_bytes(b"another engine")
    with pytest.raises(SegdeployError, match="does not match its sidecar"):
        check_loadable(manifest, engine, engine.read_bytes(), "10.3.0.30", GpuFacts("Orin", "8.7", 7620))
    lonely = tmp_path / "lonely.plan"
    lonely.write_bytes(b"x")
    with pytest.raises(SegdeployError, match="no sidecar manifest lonely.plan.json"):
        read_engine_manifest(lonely)
    sidecar_path(lonely).write_text(json.dumps({"format": "segdeploy.engine/1", "gpu": {}}))
    with pytest.raises(SegdeployError, match="lonely.plan.json: field created: Field required"):
        read_engine_manifest(lonely)


# --- calibration feeding ----------------------------------------------------------------------------


def test_calibration_batches_are_fixed_shape_and_preprocessed(tiny_data, tmp_path):
    calibration = write_calibration_set(tmp_path / "calib", tiny_data, num=8)
    meta = _meta()
    batches = list(calibration_batches(calibration, meta, 3))
    assert batch_count(calibration, 3) == len(batches) == 2  # 8 images: the short last batch is dropped
    assert all(b.shape == (3, 3, 64, 96) and b.dtype == np.float32 and b.flags.c_contiguous for b in batches)
    first = next(calibration.frames())[0].astype(np.float32) / 255
    expected = (first[..., 0] - meta.recipe.mean[0]) / meta.recipe.std[0]
    np.testing.assert_allclose(batches[0][0, 0], expected, rtol=1e-5, atol=1e-5)
    folded = next(calibration_batches(calibration, _meta(fold=True), 4))
    assert folded.shape == (4, 64, 96, 3) and folded.dtype == np.float32  # the calibrator takes FP32
    np.testing.assert_array_equal(folded[0], next(calibration.frames())[0])


# --- without TensorRT: clear messages ---------------------------------------------------------------


@pytest.mark.skipif(tensorrt_available(), reason="checks the messages shown when TensorRT is missing")
def test_without_tensorrt_build_fails_and_export_says_so(tiny_export, tmp_path, runner):
    one_line_error(runner.invoke(app, ["build", str(tiny_export.onnx)]), "model.onnx", "engines need TensorRT")
    engine = _fake_engine(tmp_path, tiny_export)
    one_line_error(runner.invoke(app, ["bench", str(engine), "--no-memory"]), "model.fp16.plan", "pip install")
    with pytest.raises(SegdeployError, match="engines need TensorRT"):
        open_backend(engine)
    recipe = tiny_recipe().replace(architecture="tests.fixtures.user_models:tiny", encoder=None)
    path = tmp_path / "tiny.yaml"
    path.write_text(json.dumps({**recipe.to_dict(), "name": "tiny"}))
    result = runner.invoke(app, ["export", str(path), "--out", str(tmp_path / "exp")])
    assert result.exit_code == 0, result.output
    assert "wrote ONNX models only; engines need TensorRT" in " ".join(result.output.split())
    assert not list((tmp_path / "exp").glob("*.plan"))


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--fp16", "--int8"], "choose one"),
        (["--int8"], "--int8 needs --calib"),
        (["--calib", "calibration/cwfid"], "--calib is only used with --int8"),
    ],
)
def test_build_argument_errors(tiny_export, runner, args, fragment):
    one_line_error(runner.invoke(app, ["build", str(tiny_export.onnx), *args]), fragment)


def test_build_of_a_missing_file(tmp_path, runner):
    one_line_error(runner.invoke(app, ["build", str(tmp_path / "nope.onnx")]), "nope.onnx", "file not found")


def test_parity_skips_engines_it_cannot_run(tiny_export, tmp_path, tiny_data):
    _fake_engine(tmp_path, tiny_export)
    report = run_parity(tiny_export.out_dir, load_dataset_spec(tiny_data), options=ParityOptions(batch_size=4))
    names = [row.artifact for row in report.rows]
    if tensorrt_available():
        pytest.skip("TensorRT present: the fake engine would be opened")
    assert "model.fp16.plan" not in names and "model.fp16.onnx" in names
    assert report.skipped and report.skipped[0].startswith("model.fp16.plan: engines need TensorRT")


def test_cuda_index():
    assert (cuda_index("cuda:1"), cuda_index("cuda"), cuda_index("cpu")) == (1, 0, 0)


# --- the runtime ------------------------------------------------------------------------------------

RUNTIME_SCRIPT = """
import sys
sys.modules["torch"] = None  # any import of torch now fails
import numpy as np
from segdeploy.runtime import Segmenter
segment = Segmenter(sys.argv[1])
frame = np.random.default_rng(0).integers(0, 256, size=(50, 70, 3), dtype=np.uint8)
classes, logits = segment(frame, logits=True)
batch = segment(np.zeros((2, 64, 96, 3), np.uint8))
print(classes.shape, classes.dtype, logits.shape, batch.shape, segment.colorize(classes).shape)
"""


def test_runtime_runs_onnx_without_torch(tiny_export):
    result = subprocess.run(
        [sys.executable, "-c", RUNTIME_SCRIPT, str(tiny_export.onnx)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "(50,",
        "70)",
        "int32",
        "(3,",
        "50,",
        "70)",
        "(2,",
        "64,",
        "96)",
        "(50,",
        "70,",
        "3)",
    ]


def test_runtime_matches_the_backend_and_refuses_checkpoints(tiny_export):
    from segdeploy.runtime import Segmenter

    segment = Segmenter(tiny_export.onnx)
    frames = np.random.default_rng(1).integers(0, 256, size=(2, 64, 96, 3), dtype=np.uint8)
    expected = OnnxRuntimeBackend(tiny_export.onnx).run(frames).argmax(1)
    np.testing.assert_array_equal(segment(frames), expected)
    with pytest.raises(SegdeployError, match="not PyTorch checkpoints"):
        Segmenter(tiny_export.checkpoint)
    with pytest.raises(SegdeployError, match="expected non-empty uint8 frames HxWx3 or NxHxWx3 in RGB order"):
        segment(np.zeros((64, 96), np.uint8))


# --- on a GPU with TensorRT -------------------------------------------------------------------------


@pytest.mark.tensorrt
@pytest.mark.cuda
@needs_gpu_tensorrt
@pytest.mark.parametrize("graph", ["model.onnx", "model.fp16.onnx"])
def test_engine_build_run_and_parity_on_gpu(tiny_export, tiny_data, graph, tmp_path):
    from segdeploy.runtime import Segmenter
    from segdeploy.tensorrt.build import build_engine
    from segdeploy.tensorrt.options import BuildOptions

    source = tiny_export.out_dir / graph
    result = build_engine(source, options=BuildOptions(force=True, timing_cache=tmp_path / "timing.cache"))
    assert result.engine.is_file() and (tmp_path / "timing.cache").is_file()
    frames = np.random.default_rng(2).integers(0, 256, size=(2, 64, 96, 3), dtype=np.uint8)
    reference = OnnxRuntimeBackend(source).run(frames)
    for cuda_graph in (False, True):
        segment = Segmenter(result.engine, cuda_graph=cuda_graph)
        classes, logits = segment(frames, logits=True)
        assert np.abs(logits - reference).max() < (1e-3 if graph == "model.onnx" else 2e-2)
        assert (classes == reference.argmax(1)).mean() > 0.99
    report = run_parity(
        tiny_export.out_dir, load_dataset_spec(tiny_data), options=ParityOptions(batch_size=4, device="cuda")
    )
    assert result.engine.name in [row.artifact for row in report.rows]


# --- the whole path on stand-ins for TensorRT, pycuda and libcuda (tests/fixtures/fake_tensorrt.py) --


@pytest.fixture()
def fresh_export(tmp_path):
    recipe = tiny_recipe().replace(architecture="tests.fixtures.user_models:tiny", encoder=None)
    from segdeploy.quantize.pipeline import PrecisionOptions

    return export_artifacts(recipe, None, tmp_path / "export", precision=PrecisionOptions(fp16=True), log=print)


def test_typed_build_writes_engine_sidecar_and_timing_cache(fake_trt, fresh_export):
    from segdeploy.runtime import Segmenter
    from segdeploy.tensorrt.build import build_engine
    from segdeploy.tensorrt.options import BuildOptions

    phases = []
    result = build_engine(fresh_export.reduced["model.fp16.onnx"], progress=lambda *a: phases.append(a))
    build = fake_trt.STATE.builds[-1]
    assert build["flags"] == 1 << 1 and build["builder_flags"] == []  # STRONGLY_TYPED, no precision flags
    recipe = fresh_export.int8 or OnnxRuntimeBackend(fresh_export.onnx).meta.recipe
    (low, opt, high) = build["config"].profiles[0].shapes["input"]
    assert low == (recipe.export.batch[0], 3, recipe.export.height[0], recipe.export.width[0])
    assert high == (recipe.export.batch[2], 3, recipe.export.height[2], recipe.export.width[2])
    assert phases[-1] == ("Building engine", 2, 2)
    assert result.engine.name == "model.fp16.plan" and result.timing_cache.read_bytes() == b"+"
    manifest = read_engine_manifest(result.engine)
    assert (manifest.precision, manifest.mode, manifest.gpu.compute_capability) == ("fp16", "strongly-typed", "8.7")
    assert read_manifest(fresh_export.out_dir)["artifacts"]["model.fp16.plan"]["kind"] == "tensorrt"
    build_engine(fresh_export.reduced["model.fp16.onnx"], options=BuildOptions(force=True))
    assert result.timing_cache.read_bytes() == b"++"  # read back and extended by the next build
    with pytest.raises(SegdeployError, match="already exists; pass --force"):
        build_engine(fresh_export.reduced["model.fp16.onnx"])

    segment = Segmenter(result.engine)
    frames = np.random.default_rng(3).integers(0, 256, size=(2, 64, 96, 3), dtype=np.uint8)
    expected = OnnxRuntimeBackend(fresh_export.reduced["model.fp16.onnx"]).run(frames)
    classes, logits = segment(frames, logits=True)
    np.testing.assert_allclose(logits, expected, atol=1e-6)
    assert segment(frames[0, :50, :70]).shape == (50, 70)  # resized to the recipe size and back


def test_builder_flag_int8_calibrates_once_then_reuses_its_cache(fake_trt, fresh_export, tiny_data, tmp_path):
    from segdeploy.tensorrt.build import build_engine
    from segdeploy.tensorrt.options import BuildOptions

    calibration = write_calibration_set(tmp_path / "calib", tiny_data, num=8)
    options = BuildOptions("int8", calibration.directory, calib_batch=4)
    result = build_engine(fresh_export.onnx, options=options)
    build = fake_trt.STATE.builds[-1]
    assert build["flags"] == 0 and build["builder_flags"] == ["INT8", "FP16", OBEY]
    assert build["config"].calibration_profile.shapes["input"][1] == (4, 3, 64, 96)
    assert len(fake_trt.STATE.calibration_batches) == 2 and result.engine.name == "model.flags-int8.plan"
    assert result.calibration_cache.parent == calibration.directory and result.calibration_cache.is_file()
    first = read_engine_manifest(result.engine).raw["build"]["calibration"]
    assert first["cache_reused"] is False and first["batches"] == 2

    build_engine(fresh_export.onnx, options=dataclasses.replace(options, force=True))
    again = read_engine_manifest(result.engine).raw["build"]["calibration"]
    assert again["cache_reused"] is True and again["batches"] == 0 and len(fake_trt.STATE.calibration_batches) == 2

    fake_trt.configure("8.5.2.2")
    build_engine(fresh_export.reduced["model.fp16.onnx"], options=BuildOptions(force=True))
    assert fake_trt.STATE.builds[-1]["flags"] == 1 << 0 and fake_trt.STATE.builds[-1]["builder_flags"] == ["FP16", OBEY]
    fake_trt.configure("11.0.0")
    with pytest.raises(SegdeployError, match="no builder precision flags"):
        build_engine(fresh_export.onnx, options=dataclasses.replace(options, force=True))


def test_dla_core_setup_and_refusal(fake_trt, fresh_export):
    from segdeploy.tensorrt.build import build_engine
    from segdeploy.tensorrt.options import BuildOptions

    build_engine(fresh_export.reduced["model.fp16.onnx"], options=BuildOptions(dla_core=1))
    config = fake_trt.STATE.builds[-1]["config"]
    assert (config.default_device_type.name, config.DLA_core) == ("DLA", 1) and "GPU_FALLBACK" in config.flags
    (low, opt, high) = config.profiles[0].shapes["input"]
    assert low == opt == high  # DLA takes no dynamic shapes
    with pytest.raises(SegdeployError, match="this device has 2 DLA cores"):
        build_engine(fresh_export.reduced["model.fp16.onnx"], options=BuildOptions(dla_core=2, force=True))


def test_cuda_graph_is_captured_once_per_shape_and_replayed(fake_trt, fresh_export):
    from segdeploy.tensorrt.build import build_engine

    engine = build_engine(fresh_export.onnx).engine
    backend = open_backend(engine, device="cuda:0", cuda_graph=True)
    reference = OnnxRuntimeBackend(fresh_export.onnx)
    small = np.random.default_rng(4).integers(0, 256, size=(1, 64, 96, 3), dtype=np.uint8)
    for _ in range(3):
        np.testing.assert_allclose(backend.run(small), reference.run(small), atol=1e-6)
    # the first call runs eagerly and captures; the next two replay the graph
    assert (fake_trt.STATE.enqueues, fake_cuda.CURRENT.launches) == (2, 2)
    assert set(backend.timings()) == {"prepare", "h2d", "compute", "d2h"}
    large = np.random.default_rng(5).integers(0, 256, size=(2, 96, 128, 3), dtype=np.uint8)
    np.testing.assert_allclose(backend.run(large), reference.run(large), atol=1e-6)
    assert backend.graph is not None and fake_cuda.CURRENT.captures == 2  # captured again for the new shape
    np.testing.assert_allclose(backend.run(small), reference.run(small), atol=1e-6)
    assert fake_trt.STATE.enqueues == 6 and fake_cuda.CURRENT.launches == 2
    with pytest.raises(SegdeployError, match="does not fit the engine's profile"):
        backend.infer(np.zeros((1, 3, 64, 4096), np.float32))


def test_engines_join_parity_and_bench(fake_trt, fresh_export, tiny_data):
    from segdeploy.bench.runner import BenchConfig, run_bench
    from segdeploy.tensorrt.build import build_engine

    build_engine(fresh_export.onnx)
    report = run_parity(fresh_export.out_dir, load_dataset_spec(tiny_data), options=ParityOptions(batch_size=4))
    row = next(r for r in report.rows if r.artifact == "model.plan")
    assert row.backend == "tensorrt" and row.pixel_agreement == 1.0 and not report.skipped
    config = BenchConfig(shapes=[(64, 96)], iterations=3, warmup=1, cuda_graphs=(False, True), memory=False)
    bench = run_bench([fresh_export.out_dir / "model.plan"], config, log=lambda _: None)
    assert [r.label for r in bench.rows] == ["model.plan", "model.plan [cuda graph]"]
    assert {"gpu_h2d", "gpu_compute", "gpu_d2h"} <= set(bench.rows[0].stages_ms)


def test_engines_from_another_version_are_refused_on_load(fake_trt, fresh_export, runner):
    from segdeploy.tensorrt.build import build_engine

    engine = build_engine(fresh_export.onnx).engine
    fake_trt.configure("10.13.0.35")
    one_line_error(
        runner.invoke(app, ["bench", str(engine), "--no-memory", "--device", "cuda"]),
        "built with TensorRT 10.3.0.30, this machine has 10.13.0.35",
        "segdeploy build model.onnx --force",
    )


def test_export_builds_an_engine_beside_each_onnx_model(fake_trt, tmp_path, runner):
    recipe = tiny_recipe().replace(architecture="tests.fixtures.user_models:tiny", encoder=None)
    path = tmp_path / "tiny.yaml"
    path.write_text(json.dumps({**recipe.to_dict(), "name": "tiny"}))
    result = runner.invoke(app, ["export", str(path), "--fp16", "--out", str(tmp_path / "exp")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "exp").glob("*.plan")) == ["model.fp16.plan", "model.plan"]
    artifacts = read_manifest(tmp_path / "exp")["artifacts"]
    assert artifacts["model.plan"]["precision"] == "fp32" and artifacts["model.fp16.plan"]["precision"] == "fp16"
    again = runner.invoke(app, ["export", str(path), "--fp16", "--out", str(tmp_path / "exp")])
    one_line_error(again, "already exists; pass --force")
