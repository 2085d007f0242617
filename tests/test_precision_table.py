"""The precision table: file names, manifest kinds, validation tolerances, TensorRT build flags, gates."""

from __future__ import annotations

import numpy as np
import pytest

from segdeploy.errors import SegdeployError
from segdeploy.export.onnx_export import compare
from segdeploy.precision_table import BF16, FP16, FP32, INT8, PRECISIONS, LogitTolerance, precision
from segdeploy.recipes import Tolerance
from segdeploy.tensorrt.versions import TrtVersion, plan_build


def test_one_row_per_precision_names_its_graph_and_kind():
    assert list(PRECISIONS) == ["fp32", "fp16", "int8", "bf16"]
    graphs = ["model.onnx", "model.fp16.onnx", "model.int8.onnx", "model.onnx"]  # BF16 runs the FP32 graph
    assert [p.graph_file for p in PRECISIONS.values()] == graphs
    assert {p.kind for p in PRECISIONS.values()} == {"onnx"}
    assert precision("fp16") is FP16
    with pytest.raises(SegdeployError, match="--x: unknown precision 'fp8' \\(known: fp32, fp16, int8, bf16\\)"):
        precision("fp8", "--x")


def test_bf16_is_a_precision_of_its_own_not_fp32s_gate():
    tolerance = Tolerance()
    assert tolerance.for_precision("bf16") == BF16.gate == tolerance.bf16
    assert tolerance.for_precision("bf16") != tolerance.for_precision("fp32")
    assert BF16.gate.miou_delta > FP16.gate.miou_delta  # 8 mantissa bits against FP16's 11


def logits(scale: float, rng: np.random.Generator) -> np.ndarray:
    return (rng.standard_normal((1, 3, 32, 32)) * scale).astype(np.float32)


def test_large_logits_pass_on_float_rounding_that_the_old_absolute_bound_failed():
    rng = np.random.default_rng(0)
    reference = logits(200.0, rng)  # max |logit| near 600
    assert 550 < np.abs(reference).max() < 1000
    output = reference + np.float32(2e-3) * np.sign(reference)  # float32 rounding at that scale
    diff = float(np.abs(output - reference).max())
    assert diff > 1e-3  # what the old tolerance (1e-3 absolute) called a failed export
    _, mismatches, within = compare(reference, output, Tolerance().logits())
    assert within and mismatches == 0


def test_the_relative_part_is_per_image():
    rng = np.random.default_rng(1)
    reference = np.concatenate([logits(200.0, rng), logits(1.0, rng)])
    output = reference.copy()
    output[1] += 2e-3  # the small-logit image may not borrow the large one's bound
    tolerance = Tolerance().logits()
    assert compare(reference, output, tolerance)[2] is False
    assert tolerance.excess(reference, output) > 0
    assert LogitTolerance(1e-3, 0.0).excess(reference, reference) <= 0


def test_recipe_tolerances_default_to_the_table():
    tolerance = Tolerance()
    assert tolerance.logits() == FP32.validation
    assert tolerance.for_precision("fp32") == FP32.gate
    assert tolerance.for_precision("fp16") == FP16.gate and tolerance.for_precision("int8") == INT8.gate


def test_tensorrt_flags_come_from_the_table():
    flags_version = TrtVersion(10, 3)
    for wanted in (FP16, INT8):
        plan = plan_build(flags_version, "fp32", wanted.name, "model.onnx")
        assert (plan.builder_flags, plan.calibrate) == (wanted.request_flags, wanted.calibrates)
    for typed in PRECISIONS.values():
        assert plan_build(TrtVersion(8, 6), typed.name, None, "g").builder_flags == typed.typed_flags
    with pytest.raises(SegdeployError, match="choose fp16 or int8"):
        plan_build(flags_version, "fp32", "fp32", "model.onnx")
