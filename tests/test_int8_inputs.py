"""The INT8 path reads its calibration set once per export and normalises with the set's recorded
mean and std."""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from segdeploy.data.calibration import CalibrationSet, write_calibration_set
from segdeploy.export.pipeline import export_artifacts
from segdeploy.meta import IOSpec, ModelMeta, default_colors, normalize
from segdeploy.quantize.int8 import FrameFeed
from segdeploy.quantize.pipeline import PrecisionOptions

from .helpers import tiny_recipe


def test_an_int8_export_reads_the_calibration_set_once(tiny_data, tmp_path, monkeypatch):
    calibration = write_calibration_set(tmp_path / "calib", tiny_data, num=8)
    reads = []
    original = CalibrationSet.frames
    monkeypatch.setattr(CalibrationSet, "frames", lambda self, *a: reads.append(self) or original(self, *a))
    loads = []
    import segdeploy.quantize.pipeline as pipeline

    load = pipeline.load_calibration_set
    monkeypatch.setattr(pipeline, "load_calibration_set", lambda d: loads.append(d) or load(d))
    recipe = tiny_recipe().replace(architecture="tests.fixtures.user_models:tiny", encoder=None)
    options = PrecisionOptions(calibration=calibration.directory, method="minmax", max_miou_drop=1.0, always_rank=True)
    result = export_artifacts(recipe, None, tmp_path / "e", precision=options, log=lambda _: None)
    assert result.int8 is not None and result.int8.ranking  # calibrated, evaluated and ranked ...
    assert len(loads) == 1 and len(reads) == 1  # ... from one reading of the set
    entry = json.loads(result.manifest.read_text())["artifacts"]["model.int8.onnx"]
    assert isinstance(entry["probe_within_tolerance"], bool)  # against the precision table's INT8 bound


def test_calibration_frames_are_normalised_with_the_sets_mean_and_std(tiny_data, tmp_path):
    calibration = write_calibration_set(tmp_path / "calib", tiny_data, num=8)
    recorded = dataclasses.replace(calibration, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    recipe = tiny_recipe()  # ImageNet mean and std: not the set's
    meta = ModelMeta(recipe, ["soil", "crop", "weed"], default_colors(3))
    first = next(calibration.frames())
    fed = FrameFeed(recorded, meta, "input").get_next()
    assert fed is not None
    np.testing.assert_array_equal(fed["input"], normalize(first, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)))
    folded = FrameFeed(recorded, dataclasses.replace(meta, io=IOSpec(fold_preprocess=True)), "input").get_next()
    assert folded is not None
    np.testing.assert_array_equal(folded["input"], first)  # the graph normalises uint8 frames itself
