"""One INT8 engine per TensorRT version from the two INT8 graphs: model.int8-fp16.onnx (FP16 remainder,
opset 19) strongly typed on >= 10, model.int8.onnx with the INT8 and FP16 flags on 8.x, on the fakes."""

from __future__ import annotations

import contextlib
import json

import pytest

from segdeploy.data.calibration import write_calibration_set
from segdeploy.data.synthetic import write_synthetic_dataset
from segdeploy.errors import SegdeployError
from segdeploy.export.engines import build_engines
from segdeploy.export.pipeline import export_artifacts
from segdeploy.quantize.pipeline import PrecisionOptions

from .helpers import tiny_recipe


@pytest.fixture(scope="module")
def int8_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("int8-engines")
    data = write_synthetic_dataset(root / "data", n_train=10, n_val=4, size=(64, 96), seed=3)
    calibration = write_calibration_set(root / "calib", data, num=8)
    recipe = tiny_recipe().replace(architecture="tests.fixtures.user_models:tiny", encoder=None)
    options = PrecisionOptions(calibration=calibration.directory, method="minmax", max_miou_drop=1.0)
    return export_artifacts(recipe, None, root / "exp", precision=options, log=lambda _: None)


def _build(graphs, log=lambda _: None):
    return build_engines(graphs, False, log, lambda _: contextlib.nullcontext(lambda *a: None))


@pytest.mark.parametrize(
    ("version", "graph", "mode", "flags"),
    [
        ("10.3.0.30", "model.int8-fp16.onnx", "strongly-typed", []),
        ("11.0.0", "model.int8-fp16.onnx", "strongly-typed", []),
        ("8.6.1", "model.int8.onnx", "builder-flags", ["INT8", "FP16", "OBEY_PRECISION_CONSTRAINTS"]),
    ],
)
def test_export_builds_the_int8_graph_the_version_can_run_in_fp16(fake_trt, int8_export, version, graph, mode, flags):
    fake_trt.configure(version)
    graphs = [int8_export.reduced["model.int8.onnx"], int8_export.reduced["model.int8-fp16.onnx"]]
    built = _build(graphs)
    assert [b.engine.name for b in built] == [graph.replace(".onnx", ".plan")]
    sidecar = json.loads(built[0].sidecar.read_text())
    assert (sidecar["precision"], sidecar["build"]["mode"], sidecar["build"]["builder_flags"]) == ("int8", mode, flags)
    built[0].engine.unlink()
    built[0].sidecar.unlink()


def test_tensorrt_8_refuses_the_opset_19_graph_naming_the_one_it_can_build(fake_trt, int8_export):
    from segdeploy.tensorrt.build import build_engine

    fake_trt.configure("8.6.1")
    with pytest.raises(SegdeployError, match=r"model\.int8-fp16\.onnx: opset 19.*build model\.int8\.onnx"):
        build_engine(int8_export.reduced["model.int8-fp16.onnx"])


def test_a_strongly_typed_build_of_the_fp32_remainder_graph_says_where_the_fp16_one_is(fake_trt, int8_export):
    from segdeploy.tensorrt.build import build_engine

    lines: list[str] = []
    result = build_engine(int8_export.reduced["model.int8.onnx"], log=lines.append)
    assert any("model.int8-fp16.onnx beside it has it in FP16" in line for line in lines)
    result.engine.unlink()
    result.sidecar.unlink()
