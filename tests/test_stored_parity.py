"""The export's stored reference (reference.npz) and parity against it, with PyTorch and without it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from segdeploy.artifacts.reference import FLOAT16_STORAGE_RTOL
from segdeploy.cli import app
from segdeploy.data.spec import load_dataset_spec
from segdeploy.export.pipeline import export_artifacts
from segdeploy.files import sha256_of
from segdeploy.meta import IOSpec
from segdeploy.models.checkpoint import load_model
from segdeploy.models.deploy_module import DeployModule
from segdeploy.parity import ParityOptions
from segdeploy.quantize.pipeline import PrecisionOptions
from segdeploy.stored_parity import check_parity

from .conftest import REPO

# Runs the CLI with torch, torchvision and segmentation-models-pytorch unimportable, as on a target
# that has TensorRT (its stand-in) and the runtime's libraries only; prints whether any of them got
# imported after all.
NO_TORCH = """
import sys
from tests.fixtures import fake_cuda, fake_tensorrt
sys.modules.update(fake_tensorrt.MODULES)
fake_tensorrt.configure("10.3.0.30")
import segdeploy.cuda.select
segdeploy.cuda.select.load_driver = lambda: fake_cuda.CURRENT
BLOCKED = ("torch", "torchvision", "segmentation_models_pytorch")

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: this machine has no PyTorch")
        return None

sys.meta_path.insert(0, NoTorch())
from segdeploy.cli import app
try:
    app(sys.argv[1:], standalone_mode=True)
except SystemExit as stop:
    print("torch imported:", any(name.split(".")[0] in BLOCKED for name in sys.modules))
    raise
"""


def _without_torch(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), "COLUMNS": "250"}
    return subprocess.run(
        [sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, check=False, cwd=REPO, env=env
    )


@pytest.fixture(scope="module")
def full_export(world, tmp_path_factory) -> Path:
    """The tiny user model exported with FP16 and INT8 graphs: the reference frames come from the
    calibration set's data set (its val split), with their labels."""
    out = tmp_path_factory.mktemp("stored") / "exp"
    precision = PrecisionOptions(fp16=True, calibration=world["calib"])
    export_artifacts(str(world["recipe"]), None, out, precision=precision, log=lambda _: None)
    return out


def test_export_stores_frames_and_pytorch_outputs_listed_in_the_manifest(world):
    folder = world["exp"]
    entry = json.loads((folder / "manifest.json").read_text())["artifacts"]["reference.npz"]
    assert entry["kind"] == "reference" and entry["sha256"] == sha256_of(folder / "reference.npz")
    assert entry["bytes"] == (folder / "reference.npz").stat().st_size
    assert entry["frames"] == {"source": "random", "seed": 0, "count": 2, "size": [64, 96]}
    with np.load(folder / "reference.npz", allow_pickle=False) as data:
        assert sorted(data.files) == ["classes", "frames", "logits"]  # random frames: no labels
        frames, classes, logits = data["frames"], data["classes"], data["logits"]
    assert frames.shape == (2, 64, 96, 3) and frames.dtype == np.uint8
    assert logits.shape == (2, 3, 64, 96) and logits.dtype == np.float16
    network, meta, _ = load_model(folder / "model.pt")
    module = DeployModule(network, meta.recipe.mean, meta.recipe.std, IOSpec(True, False)).eval()
    with torch.inference_mode():
        expected = module(torch.from_numpy(frames)).numpy()
    np.testing.assert_array_equal(classes, expected.argmax(1))
    bound = FLOAT16_STORAGE_RTOL * np.abs(logits.astype(np.float64)) + 2.0**-25  # subnormals: half of 2^-24
    assert (np.abs(logits.astype(np.float64) - expected) <= bound).all()


def test_reduced_exports_store_data_set_frames_with_labels(full_export, world):
    entry = json.loads((full_export / "manifest.json").read_text())["artifacts"]["reference.npz"]
    spec = load_dataset_spec(world["data"])
    assert entry["frames"] == {
        "source": "dataset",
        "dataset": spec.name,
        "data": spec.source,
        "split": "val",
        "ids": spec.split_ids("val")[:2],
        "ignore_index": 255,
    }
    with np.load(full_export / "reference.npz", allow_pickle=False) as data:
        assert data["labels"].shape == data["classes"].shape == (2, 64, 96)


def test_argmax_exports_store_class_maps_only(world, tmp_path):
    io = IOSpec(fold_preprocess=True, argmax=True)
    result = export_artifacts(str(world["recipe"]), None, tmp_path, io, log=lambda _: None)
    with np.load(result.reference, allow_pickle=False) as data:
        assert sorted(data.files) == ["classes", "frames"]
    report = check_parity(tmp_path)
    assert report.passed and report.rows[1].pixel_agreement == 1.0 and report.rows[1].max_abs_logit_diff is None


def test_parity_without_torch_checks_every_artifact_against_the_stored_reference(
    full_export, world, tmp_path, fake_trt
):
    from segdeploy.tensorrt.build import build_engine

    shutil.copytree(full_export, tmp_path / "exp")
    full_export = tmp_path / "exp"
    build_engine(full_export / "model.fp16.onnx", log=lambda _: None)  # listed in the manifest beside it
    out = _without_torch("parity", str(full_export), "--json", str(tmp_path / "p.json"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("torch imported: False"), out.stdout
    report = json.loads((tmp_path / "p.json").read_text())
    manifest = json.loads((full_export / "manifest.json").read_text())
    assert report["reference"] == {
        "file": "reference.npz",
        "sha256": manifest["artifacts"]["reference.npz"]["sha256"],
        "frames": f"{report['dataset']}/val: {', '.join(manifest['artifacts']['reference.npz']['frames']['ids'])}",
        "labels": "stored with the frames",
    }
    assert "against reference.npz" in out.stdout  # the table names it too
    rows = {row["artifact"]: row for row in report["rows"]}
    graphs = {"model.onnx", "model.fp16.onnx", "model.int8.onnx", "model.int8-fp16.onnx", "model.int8-cpu.onnx"}
    graphs.add("model.fp16.plan")
    assert set(rows) == {"reference.npz", *graphs}
    assert rows["model.fp16.plan"]["backend"] == "tensorrt" and rows["model.fp16.plan"]["pixel_agreement"] > 0.99
    fp32 = rows["model.onnx"]
    assert fp32["pixel_agreement"] == 1.0 and fp32["failures"] == []
    assert 0 < fp32["max_abs_logit_diff"] < 1e-2  # float16 storage of the reference logits
    assert all(row["miou"] is not None for row in report["rows"])  # labels stored with the frames
    assert report["passed"] is True
    # with --data: mIoU against the data set's labels, the same frames
    out = _without_torch("parity", str(full_export), "--data", str(world["data"]), "--json", str(tmp_path / "d.json"))
    assert out.returncode == 0, out.stderr
    with_data = json.loads((tmp_path / "d.json").read_text())
    assert with_data["reference"]["labels"] == str(world["data"])
    assert [r["miou"] for r in with_data["rows"]] == [r["miou"] for r in report["rows"]]


def test_without_torch_pytorch_reference_and_old_exports_are_refused_in_one_line(world, tmp_path):
    out = _without_torch("parity", str(world["exp"]), "--data", str(world["data"]), "--reference", "pytorch")
    assert out.returncode == 2 and "PyTorch is not installed" in out.stderr and "Traceback" not in out.stderr
    old = tmp_path / "old"
    old.mkdir()
    for source in world["exp"].iterdir():
        if source.name != "reference.npz":
            (old / source.name).write_bytes(source.read_bytes())
    manifest = json.loads((old / "manifest.json").read_text())
    del manifest["artifacts"]["reference.npz"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    out = _without_torch("parity", str(old), "--data", str(world["data"]))
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "no stored reference" in out.stderr and "export again" in out.stderr
    assert out.stdout.strip() == "torch imported: False"


def test_with_torch_the_default_stays_pytorch_and_stored_is_asked_for(world, runner, tmp_path):
    report = check_parity(world["exp"], load_dataset_spec(world["data"]))
    assert report.reference["file"] == "model.pt" and report.reference["frames"].endswith("/val") and report.images == 4
    maps = tmp_path / "maps"
    stored = check_parity(
        world["exp"],
        load_dataset_spec(world["data"]),
        reference="stored",
        options=ParityOptions(save_disagreement=maps),
    )
    assert sorted(p.name for p in (maps / "model").iterdir()) == ["random0.png", "random1.png"]
    assert stored.reference["file"] == "reference.npz" and stored.images == 2
    assert any("random" in w for w in stored.warnings) and np.isnan(stored.rows[1].miou)  # random frames: no labels
    cli = runner.invoke(app, ["parity", str(world["exp"]), "--json", str(tmp_path / "p.json")])
    assert cli.exit_code == 0, cli.output
    assert json.loads((tmp_path / "p.json").read_text())["rows"][1]["miou"] is None


def test_stored_parity_fails_an_artifact_that_drifts(world, runner, tmp_path):
    folder = tmp_path / "exp"
    folder.mkdir()
    for source in world["exp"].iterdir():
        (folder / source.name).write_bytes(source.read_bytes())
    with np.load(folder / "reference.npz", allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    arrays["logits"] = arrays["logits"] + np.float16(0.05)  # the artifacts now drift by 0.05 from it
    np.savez_compressed(folder / "reference.npz", **arrays)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["artifacts"]["reference.npz"]["sha256"] = sha256_of(folder / "reference.npz")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    cli = runner.invoke(app, ["parity", str(folder)])
    assert cli.exit_code == 1
    assert "parity: model.onnx: max |logit diff|" in cli.stderr


def test_report_of_a_stored_parity_run_shows_its_tables_and_says_why_no_images(world, tmp_path):
    from segdeploy.look.report import build_report
    from segdeploy.look.report_markdown import render_markdown

    folder = tmp_path / "exp"
    shutil.copytree(world["exp"], folder)
    check_parity(
        folder,
        load_dataset_spec(world["data"]),
        reference="stored",
        options=ParityOptions(json_out=folder / "parity.json"),
    )
    text = render_markdown(build_report(folder, world["data"], log=lambda _: None), "report.html")
    assert "against reference.npz" in text and "No images: this parity run compared against the export's stored" in text
