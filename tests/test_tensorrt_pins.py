"""FP32 pins of FP16 builder-flag builds (issue 21, findings 1 and 2): which layers are pinned, read from
the tensors' types (ITensor.dtype), never from get_output_type (the requested precision, FLOAT unless
set), and never TopK's INT32 index output. On the TensorRT stand-in, which is as strict as TensorRT here."""

from __future__ import annotations

import pytest

from segdeploy.export.pipeline import export_artifacts
from segdeploy.meta import IOSpec
from segdeploy.quantize.pipeline import PrecisionOptions
from segdeploy.tensorrt.constraints import LayerFacts, fp32_layers
from segdeploy.tensorrt.sidecar import read_engine_manifest

from .helpers import tiny_recipe


def _export(tmp_path, argmax: bool = False):
    recipe = tiny_recipe().replace(architecture="tests.fixtures.user_models:tiny", encoder=None)
    io = IOSpec(fold_preprocess=True, argmax=True) if argmax else IOSpec()
    return export_artifacts(recipe, None, tmp_path / "export", io, precision=PrecisionOptions(fp16=True), log=print)


def _pinned(fake_trt) -> dict[str, str]:
    """Layer name -> type, for the layers the last build pinned."""
    return {name: kind for name, kind, pinned in fake_trt.STATE.builds[-1]["layers"] if pinned}


def test_a_typed_fp16_graph_built_with_flags_pins_only_its_fp32_islands(fake_trt, tmp_path):
    from segdeploy.tensorrt.build import build_engine

    fake_trt.configure("8.5.2.2")  # model.fp16.onnx takes builder flags here (no strong typing)
    export = _export(tmp_path)
    result = build_engine(export.reduced["model.fp16.onnx"])
    pinned = _pinned(fake_trt)
    assert "CONVOLUTION" not in pinned.values()  # the FP16 body stays FP16
    assert pinned["/model/Resize"] == "RESIZE"  # the logits' Resize is the graph's FP32 island
    assert read_engine_manifest(result.engine).raw["build"]["fp32_pinned_layers"] == len(pinned)


@pytest.mark.parametrize(("version", "graph"), [("10.3.0.30", "model.onnx"), ("8.5.2.2", "model.fp16.onnx")])
def test_pinning_topk_leaves_its_int32_index_output_alone(fake_trt, tmp_path, version, graph):
    from segdeploy.tensorrt.build import build_engine
    from segdeploy.tensorrt.options import BuildOptions

    fake_trt.configure(version)
    export = _export(tmp_path, argmax=True)
    source = export.onnx if graph == "model.onnx" else export.reduced[graph]
    build_engine(source, options=BuildOptions("fp16") if graph == "model.onnx" else BuildOptions())
    assert "TOPK" in _pinned(fake_trt).values()  # ArgMax runs FP32; the fixture fails on a set index type


def _resize(name: str, source: str, interpolating: bool) -> LayerFacts:
    return LayerFacts("RESIZE", ("FLOAT",), (source,), (name,), interpolating)


def test_builder_flags_pin_only_an_interpolating_resize_with_no_weighted_layer_after_it():
    layers = [
        LayerFacts("CONVOLUTION", ("FLOAT",), ("input",), ("c1",)),
        _resize("up1", "c1", interpolating=True),  # a feature Resize: a convolution reads it
        LayerFacts("CONVOLUTION", ("FLOAT",), ("up1",), ("c2",)),
        _resize("up2", "c2", interpolating=False),  # nearest: copies values
        LayerFacts("CONVOLUTION", ("FLOAT",), ("up2",), ("logits",)),
        _resize("up3", "logits", interpolating=True),  # the logits' upsampling
        LayerFacts("TOPK", ("FLOAT", "INT32"), ("up3",), ("values", "classes")),
    ]
    assert fp32_layers(layers, typed_graph=False) == [5, 6]
    assert layers[6].float_outputs() == [0]


def test_a_typed_graph_pins_layers_whose_float_outputs_are_all_float():
    layers = [
        LayerFacts("CAST", ("HALF",)),
        LayerFacts("CONVOLUTION", ("HALF",)),
        LayerFacts("CAST", ("FLOAT",)),
        LayerFacts("TOPK", ("FLOAT", "INT32")),
        LayerFacts("SHAPE", ("INT64",)),
    ]
    assert fp32_layers(layers, typed_graph=True) == [2, 3]
