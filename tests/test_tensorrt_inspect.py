"""`segdeploy inspect`: per-layer precisions from TensorRT's engine inspector, read from the documented
JSON (tensorrt/inspection.py) and asked of the strict stand-in (tests/fixtures/fake_tensorrt.py), which
gives names only unless the engine was built with ProfilingVerbosity.DETAILED and no formats unless
an execution context with its input shapes is set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segdeploy.cli import app
from segdeploy.data.calibration import write_calibration_set
from segdeploy.errors import SegdeployError
from segdeploy.export.pipeline import export_artifacts
from segdeploy.quantize.pipeline import PrecisionOptions
from segdeploy.tensorrt.inspection import parse_engine_information, precision_of
from segdeploy.tensorrt.sidecar import read_engine_manifest

from .helpers import one_line_error, tiny_recipe

ENGINE = Path("model.plan")


def _tensor(description: str) -> dict:
    return {"Name": "t", "Location": "Device", "Dimensions": [1, 32, 64, 96], "Format/Datatype": description}


def _layer(name: str, kind: str, parameter: str | None, inputs: list[str], outputs: list[str]) -> dict:
    layer = {
        "Name": name,
        "LayerType": kind,
        "Inputs": [_tensor(d) for d in inputs],
        "Outputs": [_tensor(d) for d in outputs],
        "TacticValue": "0x1",
    }
    return layer if parameter is None else {**layer, "ParameterType": parameter}


# --- the documented JSON ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("description", "precision"),
    [
        ("Row major linear FP32", "FP32"),
        ("Channel major FP16 format where channel % 8 == 0", "FP16"),
        ("Thirty-two wide channel vectorized row major Int8 format", "INT8"),
        ("Channel major INT8 format where channel % 16 == 0", "INT8"),
        ("Row major linear UInt8 format", "UINT8"),  # not Int8
        ("Two wide channel vectorized row major BFloat16 format", "BF16"),  # not Float
        ("Half", "FP16"),
        ("Float", "FP32"),
        ("Row major linear Int32", "INT32"),
        ("Unknown format", "?"),
    ],
)
def test_format_descriptions_name_their_precision(description, precision):
    assert precision_of(description) == precision


def test_detailed_json_gives_layers_types_and_a_summary():
    text = json.dumps(
        {
            "Layers": [
                _layer("conv1 + relu1", "CaskConvolution", "Convolution", ["Int8"], ["Int8"]),
                _layer(
                    "conv2\x1erelu2",
                    "CaskConvolution",
                    "Convolution",
                    ["Thirty-two wide channel vectorized row major Int8 format"],
                    ["Half"],
                ),
                _layer("add", "PointWiseV2", "PointWise", ["Half", "Half"], ["Half"]),
                _layer("Reformatting CopyNode", "Reformat", None, ["Half"], ["Row major linear FP32"]),
                _layer("up", "Resize", "Resize", ["Row major linear FP32"], ["Row major linear FP32"]),
                _layer("head", "CaskSoftMaxV2", "SoftMax", ["Float"], ["Float"]),
            ],
            "Bindings": ["input", "logits"],
        }
    )
    layers = parse_engine_information(text, ENGINE)
    assert layers.detailed
    assert [layer.precision for layer in layers.layers] == ["INT8", "INT8", "FP16", "FP16", "FP32", "FP32"]
    assert layers.layers[1].name == "conv2+relu2" and layers.layers[3].kind == "Reformat"
    assert layers.layers[2].inputs == ("FP16", "FP16")
    assert layers.counts() == {"INT8": 2, "FP16": 2, "FP32": 2}
    assert layers.summary() == "INT8 2 layers, FP16 2, FP32 2 (Resize, SoftMax)"


@pytest.mark.parametrize("verbosity", ["names", "none"])
def test_names_only_is_not_detailed_and_says_so_in_one_line(verbosity):
    entries = ["conv1 + relu1", "up"] if verbosity == "names" else []
    layers = parse_engine_information(json.dumps({"Layers": entries, "Bindings": []}), ENGINE)
    assert not layers.detailed and len(layers.layers) == len(entries)
    line = layers.lacking_detail()
    assert "ProfilingVerbosity.DETAILED" in line and "segdeploy build --force" in line and "\n" not in line


@pytest.mark.parametrize("text", ["not json", "[]", '{"Bindings": []}', '{"Layers": "x"}'])
def test_text_that_is_not_the_inspectors_json_is_one_line(text):
    with pytest.raises(SegdeployError, match="model.plan: TensorRT's engine inspector gave no layer list"):
        parse_engine_information(text, ENGINE)


# --- on the stand-in --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    recipe = tiny_recipe().replace(architecture="tests.fixtures.user_models:tiny", encoder=None)
    out = tmp_path_factory.mktemp("inspect-export")
    return export_artifacts(recipe, None, out, precision=PrecisionOptions(fp16=True), log=lambda _: None)


@pytest.fixture(scope="module")
def calibration(tiny_data, tmp_path_factory):
    return write_calibration_set(tmp_path_factory.mktemp("calib") / "set", tiny_data, num=8)


def _build(onnx: Path, engine: Path, **options):
    from segdeploy.tensorrt.build import build_engine
    from segdeploy.tensorrt.options import BuildOptions

    return build_engine(onnx, engine, options=BuildOptions(**options), log=lambda _: None).engine


@pytest.mark.parametrize("version", ["8.5.2.2", "10.3.0.30"])
def test_an_int8_engine_shows_its_int8_and_fp32_layers(fake_trt, exported, calibration, tmp_path, version):
    from segdeploy.backends.engine_layers import inspect_engine

    fake_trt.configure(version)
    engine = _build(
        exported.onnx, tmp_path / "int8.plan", precision="int8", calibration=calibration.directory, calib_batch=4
    )
    assert read_engine_manifest(engine).raw["build"]["profiling_verbosity"] == "DETAILED"
    layers = inspect_engine(engine)
    assert layers.detailed and "?" not in layers.counts()  # formats shown: the context's shapes were set
    kinds = {layer.kind: layer.precision for layer in layers.layers}
    assert kinds["Convolution"] == "INT8" and kinds["Resize"] == "FP32"  # the FP16 block list holds
    assert layers.summary().startswith("INT8 ")


def test_on_tensorrt_11_a_strongly_typed_fp16_engine_is_fp16(fake_trt, exported, tmp_path):
    from segdeploy.backends.engine_layers import inspect_engine

    fake_trt.configure("11.0.0")
    layers = inspect_engine(_build(exported.reduced["model.fp16.onnx"], tmp_path / "fp16.plan"))
    assert layers.detailed and "FP16" in layers.counts() and "INT8" not in layers.counts()


def test_inspect_prints_the_table_and_the_summary_and_writes_json(fake_trt, exported, calibration, tmp_path, runner):
    engine = _build(
        exported.onnx, tmp_path / "int8.plan", precision="int8", calibration=calibration.directory, calib_batch=4
    )
    out = tmp_path / "layers.json"
    result = runner.invoke(app, ["inspect", str(engine), "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "Convolution" in result.output and "int8.plan: INT8 " in result.output
    assert json.loads(out.read_text())["detailed"] is True
    one_line_error(runner.invoke(app, ["inspect", str(engine), "--json", str(out)]), "layers.json", "--force")


def test_an_engine_built_without_detail_gets_one_line_not_an_empty_table(
    fake_trt, exported, tmp_path, runner, monkeypatch
):
    names_only = fake_trt.tensorrt.ProfilingVerbosity.LAYER_NAMES_ONLY
    monkeypatch.setattr(fake_trt.Config, "profiling_verbosity", property(lambda _: names_only, lambda *_: None))
    engine = _build(exported.onnx, tmp_path / "old.plan")  # as an engine built before segdeploy asked for DETAILED
    result = runner.invoke(app, ["inspect", str(engine)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "built without ProfilingVerbosity.DETAILED" in lines[0], result.output


def test_inspect_refuses_what_is_not_an_engine_in_one_line(fake_trt, exported, runner):
    one_line_error(runner.invoke(app, ["inspect", str(exported.onnx)]), "model.onnx", "not a TensorRT engine")


def test_the_stand_ins_inspector_refuses_what_tensorrt_refuses(fake_trt, exported, tmp_path):
    from segdeploy.cuda import CudaSession

    trt = fake_trt.tensorrt
    data = _build(exported.onnx, tmp_path / "model.plan").read_bytes()
    with CudaSession(0) as cuda, cuda.current():
        runtime = trt.Runtime(trt.Logger())
        engine, other = runtime.deserialize_cuda_engine(data), runtime.deserialize_cuda_engine(data)
        context = other.create_execution_context()
        inspector = engine.create_engine_inspector()
        raw = json.loads(inspector.get_engine_information(trt.LayerInformationFormat.JSON))
        tensors = [t for layer in raw["Layers"] for t in layer["Inputs"]]
        assert tensors and all("Format/Datatype" not in t and -1 in t["Dimensions"] for t in tensors)  # no context
        with pytest.raises(AssertionError, match="another engine"):
            inspector.execution_context = context
        builder = trt.Builder(trt.Logger())
        config = builder.create_builder_config()
        with pytest.raises(TypeError):
            config.profiling_verbosity = "DETAILED"  # pybind11 takes only a ProfilingVerbosity
        del config, builder, inspector, context, engine, other, runtime
