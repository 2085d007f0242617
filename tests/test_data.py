"""Dataset YAML, mask encodings, and every bad-data case: one line naming the file, exit code != 0."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from segdeploy.cli import app
from segdeploy.data.calibration import load_calibration_set, write_calibration_set
from segdeploy.data.dataset import SegmentationSplit
from segdeploy.data.masks import encode_palette_png
from segdeploy.data.spec import load_dataset_spec
from segdeploy.errors import SegdeployError, SegdeployWarning

from .conftest import REPO, real_dataset
from .helpers import one_line_error


def write_set(
    root: Path,
    encoding: str,
    masks: dict[str, np.ndarray],
    classes: int = 3,
    images: dict[str, np.ndarray] | None = None,
    **extra: object,
) -> Path:
    """A data set folder with the given masks (and matching grey images unless given)."""
    (root / "img").mkdir(parents=True, exist_ok=True)
    (root / "lbl").mkdir(exist_ok=True)
    for sample_id, mask in masks.items():
        image = (images or {}).get(sample_id, np.full((*mask.shape[:2], 3), 90, np.uint8))
        Image.fromarray(image).save(root / "img" / f"{sample_id}.png")
        Image.fromarray(mask).save(root / "lbl" / f"{sample_id}.png")
    colors = [[0, 0, 0], [0, 255, 0], [255, 0, 0], [0, 0, 255]][:classes]
    spec = {
        "images": "img/{id}.png",
        "masks": "lbl/{id}.png",
        "mask_encoding": encoding,
        "root": ".",
        "classes": [{"name": f"c{i}", "color": c} for i, c in enumerate(colors)],
        "splits": {"train": sorted(masks), "val": sorted(masks)},
        **extra,
    }
    path = root / "data.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def load(path: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    return SegmentationSplit(load_dataset_spec(path), "train").load_all()


def test_rgb_masks_decode_to_class_indices(tmp_path):
    mask = np.zeros((4, 5, 3), np.uint8)
    mask[1, 2] = (0, 255, 0)
    mask[3, 4] = (255, 0, 0)
    ((_, decoded),) = load(write_set(tmp_path, "rgb", {"a": mask}))
    assert decoded[1, 2] == 1 and decoded[3, 4] == 2 and decoded.sum() == 3


def test_index_and_palette_masks_keep_ignore(tmp_path):
    mask = np.array([[0, 1, 2], [255, 1, 0]], np.uint8)
    palette_dir = tmp_path / "pal"
    path = write_set(tmp_path / "idx", "index", {"a": mask})
    ((_, decoded),) = load(path)
    np.testing.assert_array_equal(decoded, mask)
    path = write_set(palette_dir, "index", {"a": mask})
    encode_palette_png(mask, [(0, 0, 0), (0, 255, 0), (255, 0, 0)]).save(palette_dir / "lbl" / "a.png")
    ((_, decoded),) = load(path)
    np.testing.assert_array_equal(decoded, mask)


def test_palette_png_round_trip(tmp_path):
    mask = np.random.default_rng(0).integers(0, 3, size=(7, 9)).astype(np.uint8)
    colors = [(0, 0, 0), (0, 255, 0), (255, 0, 0)]
    encode_palette_png(mask, colors).save(tmp_path / "m.png")
    reread = Image.open(tmp_path / "m.png")
    assert reread.mode == "P"
    np.testing.assert_array_equal(np.asarray(reread), mask)
    assert reread.getpalette()[:9] == [c for color in colors for c in color]


def test_binary_masks(tmp_path):
    mask = np.array([[0, 255], [255, 255]], np.uint8)
    ((_, decoded),) = load(write_set(tmp_path, "binary", {"a": mask}, classes=2))
    np.testing.assert_array_equal(decoded, [[0, 1], [1, 1]])


def test_resize_uses_nearest_for_masks(tmp_path):
    mask = np.zeros((40, 60, 3), np.uint8)
    mask[:, 30:] = (255, 0, 0)
    ((image, decoded),) = load(write_set(tmp_path, "rgb", {"a": mask}, resize=[20, 30]))
    assert image.shape == (20, 30, 3) and decoded.shape == (20, 30)
    assert set(np.unique(decoded)) == {0, 2}


def test_random_split_is_deterministic_and_disjoint(tmp_path):
    masks = {f"{i:02d}": np.zeros((4, 4), np.uint8) for i in range(10)}
    path = write_set(tmp_path, "index", masks)
    raw = yaml.safe_load(path.read_text())
    del raw["splits"]
    raw["random_split"] = {"val": 0.3, "seed": 3}
    path.write_text(yaml.safe_dump(raw))
    spec = load_dataset_spec(path)
    val, train = spec.split_ids("val"), spec.split_ids("train")
    assert len(val) == 3 and not set(val) & set(train) and len(train) == 7
    assert load_dataset_spec(path).split_ids("val") == val


@pytest.mark.parametrize("name", ["cwfid", "isbi2012"])
def test_real_dataset_yaml_loads(name):
    spec = load_dataset_spec(real_dataset(name))
    split = SegmentationSplit(spec, "val")
    image, mask = split[0]
    assert image.shape[:2] == tuple(spec.resize) == mask.shape
    assert set(np.unique(mask)) <= set(range(spec.num_classes))


def bad_rgb(tmp_path: Path) -> Path:
    mask = np.zeros((6, 6, 3), np.uint8)
    mask[2, 3] = (12, 34, 56)
    return write_set(tmp_path, "rgb", {"a": mask})


def bad_label(tmp_path: Path) -> Path:
    mask = np.zeros((6, 6), np.uint8)
    mask[4, 1] = 7
    return write_set(tmp_path, "index", {"a": mask})


def size_mismatch(tmp_path: Path) -> Path:
    return write_set(tmp_path, "index", {"a": np.zeros((6, 6), np.uint8)}, images={"a": np.zeros((6, 8, 3), np.uint8)})


def unpaired(tmp_path: Path) -> Path:
    path = write_set(tmp_path, "index", {"a": np.zeros((6, 6), np.uint8)})
    (tmp_path / "lbl" / "a.png").unlink()
    return path


def unreadable(tmp_path: Path) -> Path:
    path = write_set(tmp_path, "index", {"a": np.zeros((6, 6), np.uint8)})
    (tmp_path / "img" / "a.png").write_bytes(b"not a png")
    return path


def bad_binary(tmp_path: Path) -> Path:
    return write_set(tmp_path, "binary", {"a": np.full((6, 6), 128, np.uint8)}, classes=2)


def bad_yaml(tmp_path: Path) -> Path:
    path = write_set(tmp_path, "index", {"a": np.zeros((6, 6), np.uint8)})
    path.write_text(path.read_text() + "colour_mode: odd\n")
    return path


BAD_DATA = {
    "colour not in class list": (bad_rgb, ["lbl/a.png", "colour (12, 34, 56)", "row 2, col 3"]),
    "label >= classes": (bad_label, ["lbl/a.png", "label 7", "row 4, col 1", ">= 3 classes"]),
    "image/mask size mismatch": (size_mismatch, ["lbl/a.png", "6x6", "8x6"]),
    "unpaired image": (unpaired, ["img/a.png", "unpaired", "no mask"]),
    "unreadable file": (unreadable, ["img/a.png", "unreadable image"]),
    "binary value": (bad_binary, ["lbl/a.png", "binary mask value 128"]),
    "unknown yaml key": (bad_yaml, ["data.yaml", "unknown key 'colour_mode'"]),
}


@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data_is_one_line_naming_the_file(case, tmp_path, runner):
    make, fragments = BAD_DATA[case]
    path = make(tmp_path)
    with pytest.raises(SegdeployError):
        load(path)
    result = runner.invoke(app, ["train", "unet", "--data", str(path), "--out", str(tmp_path / "run"), "--epochs", "1"])
    one_line_error(result, *fragments)
    assert not (tmp_path / "run" / "last.pt").exists()


def test_missing_dataset_yaml(tmp_path, runner):
    result = runner.invoke(app, ["train", "unet", "--data", str(tmp_path / "nope.yaml")])
    one_line_error(result, "nope.yaml", "not found")


def test_pascal_voc_layout_with_split_files_and_void_border(tmp_path, monkeypatch):
    voc = tmp_path / "VOC2012"
    (voc / "JPEGImages").mkdir(parents=True)
    (voc / "SegmentationClass").mkdir()
    (voc / "ImageSets" / "Segmentation").mkdir(parents=True)
    classes = yaml.safe_load((REPO / "recipes/data/voc2012.yaml").read_text())["classes"]
    colors = [tuple(c["color"]) for c in classes]
    for sample_id in ("2007_000032", "2007_000039"):
        Image.fromarray(np.full((10, 12, 3), 120, np.uint8)).save(voc / "JPEGImages" / f"{sample_id}.jpg")
        mask = np.zeros((10, 12), np.uint8)
        mask[2:8, 3:9] = 15
        mask[1, :] = 255  # the void border
        encode_palette_png(mask, colors).save(voc / "SegmentationClass" / f"{sample_id}.png")
    (voc / "ImageSets" / "Segmentation" / "train.txt").write_text("2007_000032\n")
    (voc / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000039\n")
    monkeypatch.setenv("VOC_ROOT", str(voc))
    spec = load_dataset_spec(REPO / "recipes" / "data" / "voc2012.yaml")
    ((image, mask),) = SegmentationSplit(spec, "val").load_all()
    assert spec.num_classes == 21 and image.shape == (10, 12, 3)
    assert set(np.unique(mask)) == {0, 15, 255}


def test_a_train_val_overlap_is_warned_about_naming_the_ids(tmp_path):
    """Issue 24, kind 8: ids in both train and val are named in one warning (not refused: tests like
    these train on what they validate on)."""
    masks = {name: np.zeros((4, 5), np.uint8) for name in ("a", "b", "c")}
    path = write_set(tmp_path, "index", masks)
    with pytest.warns(SegdeployWarning, match=r"data.yaml: train and val share 3 ids \(a, b, c\)"):
        load_dataset_spec(path)
    raw = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**raw, "splits": {"train": ["a", "b"], "val": ["c"]}}))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SegdeployWarning)
        load_dataset_spec(path)


def test_a_calibration_set_moved_alone_finds_its_data_set(tiny_data, tmp_path):
    """Issue 24, kind 8: a set moved without its data set finds the YAML where it was when made."""
    write_calibration_set(tmp_path / "calib", tiny_data, "train", 8)
    moved = tmp_path / "far" / "away" / "calib"
    moved.parent.mkdir(parents=True)
    (tmp_path / "calib").rename(moved)
    calibration = load_calibration_set(moved)
    assert calibration.dataset == tiny_data.resolve()
    assert next(calibration.frames()).shape == (1, *calibration.size, 3)
