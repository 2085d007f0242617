"""The zoo: every architecture gives (B, C, H, W) logits at input resolution; user models; errors."""

from __future__ import annotations

import pytest
import torch

from segdeploy.cli import app
from segdeploy.errors import SegdeployError
from segdeploy.models.info import gflops, parameter_count
from segdeploy.models.registry import ARCHITECTURES, build_model

from .helpers import one_line_error


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_logits_at_input_resolution(name):
    model = build_model(name, None, 4).eval()
    with torch.no_grad():
        for shape in [(1, 3, 64, 96), (2, 3, 96, 64)]:
            assert model(torch.zeros(shape)).shape == (shape[0], 4, *shape[2:])


@pytest.mark.parametrize("encoder", ["resnet34", "mobilenet_v2", "mobilenet_v3"])
def test_selectable_encoders(encoder):
    model = build_model("deeplabv3plus", encoder, 3).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 3, 64, 64)


def test_fcn8s_fuses_three_strides():
    model = build_model("fcn", "resnet18", 3).model
    assert {"score32", "score16", "score8"} <= {name for name, _ in model.named_children()}
    assert torch.count_nonzero(model.score8.weight) == 0  # skip scorers start at zero, as in the paper


@pytest.mark.parametrize("factory", ["tests.fixtures.user_models:tiny", "tests.fixtures.user_models:dict_output"])
def test_user_model_factories(factory):
    model = build_model(factory, None, 3).eval()
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 32, 48)).shape == (1, 3, 32, 48)


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ("tests.fixtures.user_models:not_a_module", "not an nn.Module"),
        ("tests.fixtures.user_models:missing", "no callable 'missing'"),
        ("no_such_package.mod:fn", "cannot import module"),
    ],
)
def test_bad_user_models(spec, fragment):
    with pytest.raises(SegdeployError, match=fragment):
        build_model(spec, None, 3)


def test_unknown_architecture_and_fixed_encoder():
    with pytest.raises(SegdeployError, match="unknown architecture"):
        build_model("segformer9000", None, 3)
    with pytest.raises(SegdeployError, match="fixed encoder"):
        build_model("lraspp", "resnet18", 3)


def test_pretrained_offline_fails_with_a_clear_message(monkeypatch, tmp_path, runner):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    result = runner.invoke(app, ["export", "unet", "--pretrained", "--out", str(tmp_path / "x")])
    one_line_error(result, "--pretrained", "could not fetch ImageNet weights")


def test_flops_and_params_on_meta_device():
    with torch.device("meta"):
        model = build_model("unet", "resnet18", 3)
    assert 14e6 < parameter_count(model) < 15e6
    assert gflops(model, 256, 256) == pytest.approx(2 * gflops(model, 256, 128), rel=0.01)


def test_models_command_lists_every_architecture(runner):
    result = runner.invoke(app, ["models"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ARCHITECTURES:
        assert name in result.output
