"""segdeploy bench: statistics, the measurement loop, the JSON schema, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from segdeploy.bench.runner import BenchConfig, BenchRow, _measure, scaling
from segdeploy.bench.stats import fit_line, summarize
from segdeploy.cli import app
from segdeploy.export.pipeline import export_artifacts

from .helpers import one_line_error, tiny_recipe


def test_summary_statistics_over_per_iteration_times():
    times = [float(t) for t in range(1, 101)]
    stats = summarize(times)
    assert stats["mean"] == pytest.approx(50.5) and stats["median"] == pytest.approx(50.5)
    assert stats["p90"] == pytest.approx(np.percentile(times, 90)) and stats["p99"] == pytest.approx(99.01)
    assert stats["min"] == 1 and stats["max"] == 100
    with pytest.raises(ValueError):
        summarize([])


def test_line_fit_recovers_intercept_and_slope():
    pixels = [65536, 262144, 1048576]
    intercept, slope = fit_line(pixels, [2 + 10 * p / 1e6 for p in pixels])
    assert intercept == pytest.approx(2) and slope == pytest.approx(10)


class Recorder:
    """A stand-in backend that records every timed call, so the loop's bookkeeping can be checked."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.label, self.log, self.warm = name, log, 0

    def prepare(self, frames):
        return frames

    def infer(self, feed):
        self.log.append(self.label)
        return np.zeros((feed.shape[0], 2, 4, 4), np.float32)

    def run(self, frames):
        self.warm += 1
        return np.zeros((frames.shape[0], 2, 4, 4), np.float32)

    def timings(self):
        return None


def test_warmup_is_excluded_and_order_rotates():
    log: list[str] = []
    backends = [Recorder("a", log), Recorder("b", log)]
    config = BenchConfig(shapes=[(4, 4)], iterations=4, warmup=3)
    samples = _measure(backends, np.zeros((1, 4, 4, 3), np.uint8), config)  # type: ignore[arg-type]
    assert [b.warm for b in backends] == [3, 3]
    assert all(len(s[stage]) == 4 for s in samples for stage in s)  # warm-up calls are not sampled
    assert log == ["a", "b", "b", "a", "a", "b", "b", "a"]  # the first slot alternates


def test_scaling_needs_two_shapes():
    def row(h, w, ms):
        return BenchRow("m", "onnxruntime", "fp32", 1, h, w, 3, {"median": ms}, {}, 1.0)

    assert scaling([row(64, 64, 1.0)]) == {}
    fit = scaling([row(64, 64, 1.0), row(128, 128, 4.0)])["m"]
    assert fit["ms_per_megapixel"] > 0


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    return export_artifacts(tiny_recipe(), None, out, log=lambda _: None)


def test_bench_json_schema_and_plot(exported, tmp_path, runner):
    result = runner.invoke(
        app,
        [
            "bench",
            str(exported.checkpoint),
            str(exported.onnx),
            "--shape",
            "64x96",
            "--shape",
            "96x128",
            "--iterations",
            "3",
            "--warmup",
            "1",
            "--torch-variant",
            "eager",
            "--torch-variant",
            "channels_last",
            "--json",
            str(tmp_path / "b.json"),
            "--plot",
            str(tmp_path / "b.png"),
        ],
        env={"COLUMNS": "250"},
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["format"] == "segdeploy.bench/1"
    assert {"cpu", "cores", "versions", "sgemm_gflops"} <= set(report["machine"])
    assert report["config"]["flush_denormal"] is True and report["config"]["batch"] == 1
    assert len(report["rows"]) == 6  # 3 artifacts/variants x 2 shapes
    for row in report["rows"]:
        assert set(row["latency_ms"]) == {"mean", "median", "p90", "p95", "p99", "min", "max", "std"}
        assert set(row["stages_ms"]) == {"prepare", "infer", "postprocess"} and row["iterations"] == 3
        assert row["throughput"] > 0 and row["gflops"] > 0
    assert set(report["scaling"]) == {r["label"] for r in report["rows"]}
    assert set(report["memory"]) == {r["label"] for r in report["rows"]}
    for memory in report["memory"].values():
        assert 0 < memory["baseline_rss_mb"] < memory["peak_rss_mb"]
    assert (tmp_path / "b.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["missing.onnx"], ["missing.onnx", "file not found"]),
        (["README.md"], ["README.md", "not a benchmarkable artifact"]),
    ],
)
def test_bad_artifacts(args, fragments, runner):
    one_line_error(runner.invoke(app, ["bench", *args]), *fragments)


def test_shape_outside_the_profile(exported, runner):
    result = runner.invoke(app, ["bench", str(exported.onnx), "--shape", "2048x2048", "--no-memory"])
    one_line_error(result, "model.onnx", "2048x2048", "outside")
    result = runner.invoke(app, ["bench", str(exported.onnx), "--shape", "100x100", "--no-memory"])
    one_line_error(result, "multiples of 32")


def test_gpu_stage_timings_are_sampled_per_iteration():
    class Timed(Recorder):
        def timings(self):
            return {"prepare": 0.0, "h2d": 0.1, "compute": 2.0, "d2h": 0.2}

    backend = Timed("gpu", [])
    config = BenchConfig(shapes=[(4, 4)], iterations=5, warmup=1)
    sample = _measure([backend], np.zeros((1, 4, 4, 3), np.uint8), config)[0]  # type: ignore[list-item]
    assert sample["gpu_compute"] == [2.0] * 5 and sample["gpu_h2d"] == [0.1] * 5 and len(sample["infer"]) == 5


def test_torch_cuda_graphs_need_a_gpu(tmp_path):
    import torch

    from segdeploy.backends.torch_backend import TorchBackend
    from segdeploy.errors import SegdeployError

    export = export_artifacts(tiny_recipe(), None, tmp_path / "e", log=lambda _: None)
    if torch.cuda.is_available():
        frames = np.random.default_rng(0).integers(0, 256, size=(1, 64, 96, 3), dtype=np.uint8)
        eager = TorchBackend.from_checkpoint(export.checkpoint, device="cuda")
        graphed = TorchBackend.from_checkpoint(export.checkpoint, device="cuda", cuda_graph=True)
        np.testing.assert_allclose(graphed.run(frames), eager.run(frames), atol=1e-4)
        assert set(graphed.timings()) == {"prepare", "h2d", "compute", "d2h"}
    else:
        with pytest.raises(SegdeployError, match="CUDA graphs need a CUDA device"):
            TorchBackend.from_checkpoint(export.checkpoint, cuda_graph=True)


def test_bench_config_from_command_line_terms():
    from segdeploy.errors import SegdeployError

    config = BenchConfig.from_options(shapes=[], both_cuda_graphs=True, denormals="keep", batch=2)
    assert config.torch_variants == ("eager",) and config.cuda_graphs == (False, True)
    assert not config.flush_denormal and config.batch == 2
    assert BenchConfig.from_options(shapes=[], torch_variants=["compile"]).torch_variants == ("compile",)
    with pytest.raises(SegdeployError, match="--denormals 'off': choose flush or keep"):
        BenchConfig.from_options(shapes=[], denormals="off")
    with pytest.raises(TypeError):
        BenchConfig([(64, 96)], 1)  # type: ignore[misc]  # keyword-only fields
