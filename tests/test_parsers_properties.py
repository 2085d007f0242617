"""Property-based tests of what users write by hand: data set YAML, colour maps, split lists, sizes, and
mask images of every mode and bit depth. Any input either parses into what it says or fails with a
one-line SegdeployError; nothing else escapes."""

from __future__ import annotations

import json
import string
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from segdeploy.config import parse_size
from segdeploy.data.masks import as_rgb, decode_mask
from segdeploy.data.spec import load_dataset_spec
from segdeploy.errors import SegdeployError
from segdeploy.meta import AcceptedShapes
from segdeploy.recipes import ExportSettings

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
colour = st.tuples(*[st.integers(0, 255)] * 3)
finite_or_not = st.floats(allow_nan=True, allow_subnormal=False)  # tests flush denormals (conftest)
fractions = st.floats(-1, 2, allow_nan=False, allow_subnormal=False)
GREY_PALETTE = [v for i in range(256) for v in (i, i, i)]
anything = st.recursive(
    st.none() | st.booleans() | st.integers(-300, 300) | finite_or_not | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
KEYS = [
    "name",
    "root",
    "images",
    "masks",
    "classes",
    "mask_encoding",
    "ignore_index",
    "ignore_color",
    "resize",
    "splits",
    "random_split",
]


def _write(folder: Path, payload: object) -> Path:
    path = folder / "data.yaml"
    path.write_text(yaml.safe_dump(payload))
    return path


def _spec_dict(colours: list[tuple[int, int, int]], **changes: object) -> dict[str, object]:
    raw: dict[str, object] = {
        "root": ".",
        "images": "images/{id}.png",
        "masks": "masks/{id}.png",
        "mask_encoding": "rgb",
        "classes": [{"name": f"c{i}", "color": list(c)} for i, c in enumerate(colours)],
        "splits": {"train": ["a"], "val": ["b"]},
    }
    raw.update(changes)
    return raw


@FAST
@given(st.dictionaries(st.sampled_from(KEYS), anything, max_size=8))
def test_any_data_set_yaml_parses_or_fails_in_one_line(tmp_path, raw):
    try:
        spec = load_dataset_spec(_write(tmp_path, raw))
    except SegdeployError as exc:
        assert "\n" not in str(exc) and str(tmp_path) in str(exc)
        return
    assert spec.num_classes >= 2 and 0 <= spec.ignore_index <= 255


@FAST
@given(
    st.lists(colour, min_size=2, max_size=6, unique=True),
    st.integers(-10, 300),
    st.lists(st.integers(-5, 300), min_size=3, max_size=3),
)
def test_colours_and_ignore_values_are_in_range_or_refused(tmp_path, colours, ignore_index, ignore_color):
    raw = _spec_dict(colours, ignore_index=ignore_index, ignore_color=ignore_color)
    in_range = len(colours) <= ignore_index <= 255 and all(0 <= v <= 255 for v in ignore_color)
    if in_range:
        spec = load_dataset_spec(_write(tmp_path, raw))
        assert spec.colors == colours and spec.ignore_index == ignore_index
    else:
        with pytest.raises(SegdeployError):
            load_dataset_spec(_write(tmp_path, raw))


@FAST
@given(st.lists(colour, min_size=2, max_size=5, unique=True), st.data())
def test_rgb_masks_decode_to_the_class_of_each_colour(tmp_path, colours, data):
    spec = load_dataset_spec(_write(tmp_path, _spec_dict(colours)))
    labels = np.array(data.draw(st.lists(st.integers(0, len(colours) - 1), min_size=12, max_size=12))).reshape(3, 4)
    image = Image.fromarray(np.asarray(colours, np.uint8)[labels])
    image.save(tmp_path / "m.png")
    assert np.array_equal(decode_mask(Image.open(tmp_path / "m.png"), spec, tmp_path / "m.png"), labels)


ids = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=4)


@FAST
@given(st.lists(ids, min_size=1, max_size=12))
def test_split_lists_with_repeats_are_refused(tmp_path, train):
    spec = load_dataset_spec(_write(tmp_path, _spec_dict([(0, 0, 0), (1, 1, 1)], splits={"train": train})))
    if len(set(train)) == len(train):
        assert spec.split_ids("train") == train
    else:
        with pytest.raises(SegdeployError, match="more than once"):
            spec.split_ids("train")


@FAST
@given(st.sets(ids, min_size=2, max_size=15), fractions, st.integers(0, 9))
def test_random_splits_partition_the_ids(tmp_path, names, fraction, seed):
    (tmp_path / "images").mkdir(exist_ok=True)
    for old in (tmp_path / "images").iterdir():
        old.unlink()
    for name in names:
        (tmp_path / "images" / f"{name}.png").write_bytes(b"")
    raw = _spec_dict([(0, 0, 0), (1, 1, 1)], splits={}, random_split={"val": fraction, "seed": seed})
    if not 0 <= fraction <= 1:
        with pytest.raises(SegdeployError, match="fraction"):
            load_dataset_spec(_write(tmp_path, raw))
        return
    spec = load_dataset_spec(_write(tmp_path, raw))
    train, val = spec.split_ids("train"), spec.split_ids("val")
    assert set(train) | set(val) == names and not set(train) & set(val) and val


@FAST
@given(st.text(alphabet="0123456789x-X ", max_size=10))
def test_sizes_parse_into_positive_pairs_or_fail(text):
    try:
        height, width = parse_size(text)
    except SegdeployError as exc:
        assert "\n" not in str(exc)
        return
    assert height >= 1 and width >= 1


@FAST
@given(st.integers(-5, 3000), st.integers(-5, 3000), st.integers(0, 20))
def test_shape_problems_say_why_exactly_when_a_shape_does_not_fit(height, width, batch):
    problems = AcceptedShapes.of_export(ExportSettings()).problems(batch, height, width)
    fits = 1 <= batch <= 8 and 128 <= height <= 1024 and 128 <= width <= 1024 and not height % 32 and not width % 32
    assert (not problems) == fits


MODES = {  # mode: (dtype of the array, value of a foreground pixel of a binary mask); PNG cannot hold "I"
    "1": (bool, True),
    "L": (np.uint8, 255),
    "P": (np.uint8, 255),
    "I;16": (np.uint16, 65535),
    "I": (np.int32, 255),
}


def _round_trip(image: Image.Image, path: Path) -> Image.Image:
    """The image as a mask file gives it back, PNG for every mode that it can hold."""
    if image.mode == "I":
        return image
    if image.mode == "P":  # distinct palette entries: Pillow merges identical ones on save
        image.putpalette(GREY_PALETTE)
    image.save(path)
    return Image.open(path)


def _index_spec(tmp_path: Path, encoding: str, classes: int) -> object:
    colours = [(i, i, i) for i in range(classes)]
    return load_dataset_spec(_write(tmp_path, _spec_dict(colours, mask_encoding=encoding)))


@FAST
@given(st.sampled_from(sorted(MODES)), st.integers(2, 5), st.data())
def test_index_masks_of_every_mode_keep_their_labels(tmp_path, mode, classes, data):
    dtype, _ = MODES[mode]
    top = 1 if mode == "1" else classes - 1
    labels = np.array(data.draw(st.lists(st.integers(0, top), min_size=20, max_size=20))).reshape(4, 5)
    image = Image.fromarray(labels.astype(dtype)) if mode != "P" else Image.fromarray(labels.astype(np.uint8), "P")
    reopened = _round_trip(image, tmp_path / "m.png")
    spec = _index_spec(tmp_path, "index", classes)
    assert np.array_equal(decode_mask(reopened, spec, tmp_path / "m.png"), labels)


@FAST
@given(st.sampled_from(sorted(MODES)), st.data())
def test_binary_masks_of_every_mode_and_depth(tmp_path, mode, data):
    dtype, full = MODES[mode]
    truth = np.array(data.draw(st.lists(st.booleans(), min_size=20, max_size=20))).reshape(4, 5)
    values = np.where(truth, full, 0).astype(dtype)
    image = Image.fromarray(values, "P") if mode == "P" else Image.fromarray(values)
    path = tmp_path / "m.png"
    reopened = _round_trip(image, path)
    assume(reopened.mode in ("1", "L", "P", "I;16", "I"))
    spec = _index_spec(tmp_path, "binary", 2)
    assert np.array_equal(decode_mask(reopened, spec, path), truth.astype(np.uint8))


@FAST
@given(st.lists(st.integers(0, 255), min_size=12, max_size=12))
def test_sixteen_bit_images_scale_to_eight_bits(tmp_path, grey):
    values = (np.array(grey, np.uint16) * 257).reshape(3, 4)
    Image.fromarray(values).save(tmp_path / "g.png")
    rgb = np.asarray(as_rgb(Image.open(tmp_path / "g.png")))
    assert rgb.shape == (3, 4, 3) and np.array_equal(rgb[..., 0], np.array(grey).reshape(3, 4))


MANIFEST_FIELDS = [
    "format",
    "created",
    "versions",
    "source_checkpoint",
    "model",
    "model/recipe",
    "model/class_names",
    "model/colors",
    "model/colors/0",
    "model/io",
    "preprocessing",
    "dynamic_shapes",
    "artifacts",
    "artifacts/model.onnx",
    "artifacts/model.onnx/sha256",
    "artifacts/model.onnx/bytes",
    "artifacts/model.onnx/outputs",
]


@FAST
@given(st.sampled_from(MANIFEST_FIELDS), anything)
def test_a_manifest_with_any_value_in_any_field_reads_or_fails_in_one_line(world, field, value):
    """Issue 24: whatever a hand edit puts into a manifest field, reading it never raises anything but
    a one-line SegdeployError naming the file."""
    from segdeploy.artifacts.manifest import parse_manifest

    path = world["exp"] / "manifest.json"
    raw = json.loads(path.read_text())
    *parents, last = (int(k) if k.isdigit() else k for k in field.split("/"))
    target = raw
    for key in parents:
        target = target[key]
    target[last] = value
    try:
        parsed = parse_manifest(raw, path)
    except SegdeployError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
    else:
        assert all(entry["sha256"] == entry["sha256"].lower() for entry in parsed["artifacts"].values())
