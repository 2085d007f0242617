"""ONNX export for every architecture: dynamic axes, validation against PyTorch, manifest, safety."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from segdeploy.backends import open_backend
from segdeploy.backends.torch_backend import TorchBackend
from segdeploy.cli import app
from segdeploy.export.pipeline import export_artifacts
from segdeploy.meta import IOSpec
from segdeploy.models.registry import ARCHITECTURES
from segdeploy.recipes import load_recipe

from .helpers import one_line_error


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_every_architecture_exports_within_tolerance_at_two_resolutions(name, tmp_path):
    recipe = load_recipe(name)
    result = export_artifacts(recipe, None, tmp_path)
    sizes = {(p.height, p.width) for p in result.probes}
    assert sizes == {tuple(s) for s in recipe.export.probe_sizes} and len(sizes) == 2
    assert recipe.input_size in sizes
    for probe in result.probes:
        assert probe.max_abs_diff <= 1e-3, probe
    graph = onnx.load(str(result.onnx))
    dims = [d.dim_param for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "", "height", "width"]


def test_manifest_records_hashes_versions_and_io(tmp_path):
    result = export_artifacts(load_recipe("lraspp"), None, tmp_path)
    manifest = json.loads(result.manifest.read_text())
    entry = manifest["artifacts"]["model.onnx"]
    assert len(entry["sha256"]) == 64 and entry["precision"] == "fp32" and entry["opset"] == 17
    assert entry["inputs"] == [{"name": "input", "shape": ["batch", 3, "height", "width"], "dtype": "float32"}]
    assert entry["outputs"][0]["name"] == "logits"
    assert {"torch", "onnx", "onnxruntime"} <= set(manifest["versions"])
    assert manifest["model"]["colors"] and manifest["preprocessing"]["mean"] == [0.485, 0.456, 0.406]
    assert len(entry["validation"]) == 2


def test_folded_preprocessing_and_argmax_are_honoured(tmp_path):
    recipe = load_recipe("lraspp")
    result = export_artifacts(recipe, None, tmp_path, IOSpec(fold_preprocess=True, argmax=True))
    graph = onnx.load(str(result.onnx)).graph
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_param or d.dim_value for d in graph.input[0].type.tensor_type.shape.dim] == [
        "batch",
        "height",
        "width",
        3,
    ]
    assert graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.INT32
    frames = np.random.default_rng(0).integers(0, 256, (2, 96, 128, 3), dtype=np.uint8)
    labels = open_backend(result.onnx).run(frames)
    reference = TorchBackend.from_checkpoint(result.checkpoint, argmax=False).run(frames)
    assert labels.shape == (2, 96, 128) and labels.dtype == np.int32
    assert (labels == reference.argmax(1)).mean() > 0.999


def test_export_refuses_to_overwrite_without_force(tmp_path, runner):
    out = tmp_path / "exp"
    out.mkdir()
    (out / "model.onnx").write_text("precious")
    result = runner.invoke(app, ["export", "lraspp", "--out", str(out)])
    one_line_error(result, "model.onnx", "already exists", "--force")
    assert (out / "model.onnx").read_text() == "precious"
    result = runner.invoke(app, ["export", "lraspp", "--out", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert onnx.load(str(out / "model.onnx"))
    assert not list(out.glob(".*.tmp"))


def test_user_model_exports_through_the_cli(tmp_path, runner):
    result = runner.invoke(app, ["export", "--model", "tests.fixtures.user_models:dict_output", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "validated" in result.output and (tmp_path / "model.onnx").is_file()


def test_bad_checkpoint_is_one_line(tmp_path, runner):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    result = runner.invoke(app, ["export", "unet", "--checkpoint", str(bad), "--out", str(tmp_path / "o")])
    one_line_error(result, "bad.pt", "not a readable PyTorch checkpoint")
    assert not (tmp_path / "o" / "model.onnx").exists()
