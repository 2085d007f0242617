"""predict (palette masks, overlays, video), the boundary/interior error split, compare, and report
(self-contained HTML checked in headless Chromium, Markdown summary)."""

from __future__ import annotations

import json
import re
import shutil
import sys

import numpy as np
import pytest
from PIL import Image

from segdeploy.backends import open_backend
from segdeploy.bench.runner import BenchReport, BenchRow, scaling
from segdeploy.cli import app
from segdeploy.data.masks import decode_mask, encode_palette_png
from segdeploy.data.spec import load_dataset_spec
from segdeploy.export.pipeline import export_artifacts
from segdeploy.files import write_json
from segdeploy.look.overlay import colorize, overlay, with_legend
from segdeploy.look.predict import segment
from segdeploy.look.report import make_report
from segdeploy.look.tables import parity_table
from segdeploy.meta import ModelMeta
from segdeploy.metrics import BoundaryErrors
from segdeploy.models.checkpoint import save_checkpoint
from segdeploy.models.registry import build_model
from segdeploy.parity import run_parity

from .helpers import images_in_chromium, one_line_error, tiny_recipe

COLORS = [(0, 0, 0), (0, 255, 0), (255, 0, 0)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export_artifacts(tiny_recipe(), None, tmp_path_factory.mktemp("look") / "exp", log=lambda _: None)


def _images(tiny_data):
    return sorted((tiny_data.parent / "images").glob("*.png"))


def test_palette_mask_round_trip(tmp_path):
    labels = np.random.default_rng(0).integers(0, 3, size=(20, 30)).astype(np.uint8)
    encode_palette_png(labels, COLORS).save(tmp_path / "m.png")
    image = Image.open(tmp_path / "m.png")
    assert image.mode == "P" and image.getpalette()[:9] == [c for color in COLORS for c in color]
    spec = load_dataset_spec_index(tmp_path)
    assert np.array_equal(decode_mask(image, spec, tmp_path / "m.png"), labels)
    assert np.array_equal(np.asarray(image.convert("RGB")), colorize(labels, COLORS))


def load_dataset_spec_index(folder):
    (folder / "index.yaml").write_text(
        "root: .\nimages: '{id}.jpg'\nmasks: '{id}.png'\nmask_encoding: index\nsplits: {val: [m]}\nclasses:\n"
        + "".join(f"  - {{name: c{i}, color: {list(c)}}}\n" for i, c in enumerate(COLORS))
    )
    return load_dataset_spec(folder / "index.yaml")


def test_overlay_blends_and_the_legend_wraps():
    frame = np.full((48, 64, 3), 100, np.uint8)
    labels = np.zeros((48, 64), np.uint8)
    labels[:, 32:] = 1
    assert np.array_equal(overlay(frame, labels, COLORS, 0.0), frame)
    assert np.array_equal(overlay(frame, labels, COLORS, 1.0), colorize(labels, COLORS))
    assert overlay(frame, labels, COLORS, 0.5)[0, 40].tolist() == [50, 178, 50]
    wide = with_legend(frame, ["soil", "crop", "weed"], COLORS)
    narrow = with_legend(frame, ["soil", "crop", "weed", "a rather long class name"], [*COLORS, (0, 0, 255)])
    assert wide.size[0] == 64 and wide.size[1] > 48 and narrow.size[1] > wide.size[1]  # wrapped onto more lines
    assert np.array_equal(np.asarray(wide)[:48], frame)


def test_predict_writes_palette_masks_and_overlays(exported, tiny_data, tmp_path, runner):
    images = _images(tiny_data)[:3]
    out = tmp_path / "pred"
    args = ["predict", str(exported.onnx), *map(str, images), "--out", str(out), "--overlay", "--alpha", "0.4"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    backend = open_backend(exported.onnx)
    colors = backend.meta.colors  # the recipe's (untrained: Pascal VOC's colour map)
    for path in images:
        mask = Image.open(out / "masks" / path.name)
        frame = np.asarray(Image.open(path).convert("RGB"))
        assert mask.mode == "P" and mask.size == (frame.shape[1], frame.shape[0])
        assert mask.getpalette()[:9] == [c for color in colors for c in color]
        labels = segment(backend, frame)
        assert np.array_equal(np.asarray(mask), labels)
        overlaid = np.asarray(Image.open(out / "overlays" / path.name).convert("RGB"))
        assert overlaid.shape[1] == frame.shape[1] and overlaid.shape[0] > frame.shape[0]  # the legend below
        assert np.array_equal(overlaid[: frame.shape[0]], overlay(frame, labels, colors, 0.4))
    one_line_error(runner.invoke(app, args), "already exists", "--force")
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0
    resized = runner.invoke(app, ["predict", str(exported.checkpoint), str(images[0]), "--out", str(out / "s")])
    assert resized.exit_code == 0, resized.output
    assert Image.open(out / "s" / "masks" / images[0].name).size == (96, 64)


def test_predict_reads_a_folder_and_a_video(exported, tiny_data, tmp_path, runner):
    cv2 = pytest.importorskip("cv2", reason="OpenCV not installed (pip install opencv-python-headless)")
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (96, 64))
    for path in _images(tiny_data)[:3]:
        writer.write(cv2.cvtColor(np.asarray(Image.open(path).convert("RGB")), cv2.COLOR_RGB2BGR))
    writer.release()
    folder = tiny_data.parent / "images"
    result = runner.invoke(app, ["predict", str(exported.onnx), str(folder), str(video), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "o" / "masks").iterdir())
    assert names == sorted([p.name for p in folder.glob("*.png")] + [f"clip_{i:06d}.png" for i in range(3)])
    assert Image.open(tmp_path / "o" / "masks" / "clip_000002.png").size == (96, 64)


def test_predict_bad_inputs(exported, tiny_data, tmp_path, runner, monkeypatch):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png at all")
    out = str(tmp_path / "o")
    one_line_error(
        runner.invoke(app, ["predict", str(exported.onnx), str(broken), "--out", out]), "broken.png", "unreadable image"
    )
    one_line_error(
        runner.invoke(app, ["predict", str(exported.onnx), str(tmp_path / "none.png"), "--out", out]),
        "none.png",
        "not found",
    )
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    one_line_error(
        runner.invoke(app, ["predict", str(exported.onnx), str(notes), "--out", out]), "notes.txt", "not an image"
    )
    image = str(_images(tiny_data)[0])
    one_line_error(
        runner.invoke(app, ["predict", str(exported.onnx), image, "--out", out, "--alpha", "1.5"]), "--alpha", "0 to 1"
    )
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\x00" * 64)
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 now raises ImportError
    result = runner.invoke(app, ["predict", str(exported.onnx), image, str(video), "--out", out])
    one_line_error(result, "clip.mp4", "pip install opencv-python-headless")
    assert not (tmp_path / "o").exists()  # refused before any mask was written


def test_boundary_and_interior_errors_on_a_constructed_case():
    truth = np.zeros((20, 20), np.uint8)
    truth[:, 10:] = 1  # one vertical boundary between columns 9 and 10
    prediction = truth.copy()
    prediction[:, 10] = 0  # the boundary moved by one pixel: 20 errors, all on the boundary
    prediction[2:4, 15:17] = 0  # a 2x2 blob deep inside the region: 4 interior errors
    split = BoundaryErrors(width=3)
    split.update(prediction, truth)
    # within 3 px of the boundary: columns 7..12 (the pixels on both sides of it, grown by 2)
    assert split.pixels == {"boundary": 6 * 20, "interior": 14 * 20}
    assert split.errors == {"boundary": 20, "interior": 4}
    assert split.error_rate("boundary") == pytest.approx(20 / 120)
    assert split.error_rate("interior") == pytest.approx(4 / 280)
    assert split.errors_on_boundary() == pytest.approx(20 / 24)
    ignored = truth.copy()
    ignored[2:4, 15:17] = 255  # the blob's truth unknown: its pixels leave both counts
    split = BoundaryErrors(width=1)
    split.update(prediction, ignored)
    assert split.errors == {"boundary": 20, "interior": 0}


def test_compare_reports_miou_and_the_boundary_split(exported, tiny_data, tmp_path, runner):
    figure, report = tmp_path / "c.png", tmp_path / "c.json"
    args = ["compare", str(exported.checkpoint), str(exported.onnx), "--data", str(tiny_data), "--num", "3"]
    result = runner.invoke(app, [*args, "--figure", str(figure), "--json", str(report)], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    assert figure.read_bytes()[:4] == b"\x89PNG"
    raw = json.loads(report.read_text())
    assert raw["format"] == "segdeploy.compare/1" and raw["images"] == ["008", "009", "010"]
    assert [m["artifact"] for m in raw["models"]] == [str(exported.checkpoint), str(exported.onnx)]
    for model in raw["models"]:
        assert 0 <= model["miou"] <= 1 and set(model["iou"]) == {"soil", "crop", "weed"}
        split = model["boundary"]
        assert split["boundary"]["pixels"] + split["interior"]["pixels"] == 3 * 64 * 96
        assert set(model["per_image"]) == set(raw["images"])
        assert model["small_objects"]["max_area_px"] == 64 and model["small_objects"]["connectivity"] == 8
    counts = [{n: c["components"] for n, c in m["small_objects"]["classes"].items()} for m in raw["models"]]
    assert counts[0] == counts[1]  # the same ground truth
    assert raw["models"][0]["miou"] == pytest.approx(raw["models"][1]["miou"], abs=1e-3)  # same weights


def test_compare_refuses_a_model_with_other_classes(exported, tiny_data, tmp_path, runner):
    meta = ModelMeta(tiny_recipe().replace(num_classes=2), ["background", "plant"], COLORS[:2])
    save_checkpoint(tmp_path / "two.pt", build_model("unet", "resnet18", 2), meta)
    result = runner.invoke(
        app, ["compare", str(exported.checkpoint), str(tmp_path / "two.pt"), "--data", str(tiny_data)]
    )
    one_line_error(result, "two.pt", "2 classes", "has 3")


@pytest.fixture(scope="module")
def report_dir(exported, tiny_data):
    """The export folder with a parity JSON and a (made-up) bench JSON beside the artifacts."""
    folder = exported.onnx.parent
    write_json(folder / "parity.json", run_parity(folder, load_dataset_spec(tiny_data)).to_dict())

    def row(label, height, width, ms):
        stats = {k: ms for k in ("mean", "median", "p90", "p95", "p99", "min", "max")}
        return BenchRow(label, "onnxruntime", "fp32", 1, height, width, 3, stats, {}, 1000 / ms, 1.0, 1.0 / ms)

    rows = [row(label, h, w, ms * h / 64) for h, w in ((64, 96), (128, 192)) for label, ms in (("a", 2.0), ("b", 3.0))]
    machine = {"cpu": "test CPU", "cores": 2, "cpu_flags": ["avx2"], "memory_gib": 1.0, "gpus": []}
    write_json(folder / "bench.json", BenchReport(machine, {"iterations": 3}, rows, {}, scaling(rows)).to_dict())
    return folder


def test_report_is_self_contained_html_and_markdown(report_dir, tmp_path, runner):
    html_path = tmp_path / "r.html"
    result = runner.invoke(app, ["report", str(report_dir), "--out", str(html_path), "--num", "2"])
    assert result.exit_code == 0, result.output
    page = html_path.read_text()
    sources = re.findall(r'<img[^>]* src="([^"]*)"', page)
    # iou bars, latency plot, and per image 5 panels (input, truth, reference, onnx) + 1 disagreement map
    assert len(sources) == 2 + 2 * 5 and all(s.startswith("data:image/") for s in sources)
    assert not re.search(r"(src|href)=\"(?!data:)|<link|<script|url\(", page)
    for heading in ("Parity", "Where the artifacts disagree most", "Latency", "Manifest"):
        assert heading in page
    markdown = html_path.with_suffix(".md").read_text()
    assert "| backend | artifact | precision | mIoU |" in markdown and "test CPU" in markdown
    assert "data:image" not in markdown
    one_line_error(runner.invoke(app, ["report", str(report_dir), "--out", str(html_path)]), "already exists")


def test_report_bad_inputs(report_dir, exported, tmp_path, runner):
    empty = tmp_path / "empty"
    shutil.copytree(report_dir, empty, ignore=shutil.ignore_patterns("*.json", "*.html", "*.md"))
    (empty / "manifest.json").write_bytes((report_dir / "manifest.json").read_bytes())
    one_line_error(runner.invoke(app, ["report", str(empty)]), "no parity or bench JSON")
    one_line_error(runner.invoke(app, ["report", str(tmp_path)]), "no manifest.json")
    stray = tmp_path / "stray.json"
    stray.write_text("{}")
    one_line_error(runner.invoke(app, ["report", str(report_dir), "--runs", str(stray)]), "stray.json", "neither")


def test_report_images_load_in_headless_chromium(report_dir, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("headless Chromium not installed (Debian: apt-get install chromium; .ci/run installs it)")
    html_path, _ = make_report(report_dir, tmp_path / "r.html", num=1, log=lambda _: None)
    images = images_in_chromium(chromium, html_path, tmp_path)
    assert len(images) == 2 + 5
    assert all(image["complete"] and image["width"] > 0 for image in images), images


def test_parity_table_shows_small_object_recall_per_artifact():
    """An INT8 row whose mIoU matches but which loses isolated weeds: the table says so."""

    def row(artifact, precision, found):
        small = {
            "max_area_px": 64,
            "connectivity": 8,
            "classes": {
                "soil": {"components": 0, "found": 0, "recall": float("nan")},
                "weed": {"components": 20, "found": found, "recall": found / 20},
            },
        }
        iou = {"soil": 0.9, "weed": 0.7}
        return {
            "backend": "onnxruntime",
            "artifact": artifact,
            "precision": precision,
            "miou": 0.8,
            "iou": iou,
            "miou_delta": 0.0,
            "pixel_agreement": 0.999,
            "failures": [],
            "small_objects": small,
        }

    raw = {"dataset": "d", "split": "val", "images": 2, "rows": [row("model.pt", "fp32", 18), row("i8", "int8", 9)]}
    table = parity_table(raw)
    assert table.columns[-2] == "small weed found (< 64 px)" and "small soil found (< 64 px)" not in table.columns
    assert [r[-2] for r in table.rows] == ["18/20 (90%)", "9/20 (45%)"]
    del raw["rows"][1]["small_objects"]  # a parity JSON written before small-object recall
    assert parity_table(raw).rows[1][-2] == "-"
