"""Frames as robot code hands them (issue 23): channel order, EXIF orientation, 16-bit and float images,
truncated videos and mask-name collisions."""

from __future__ import annotations

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis.extra.numpy import arrays
from PIL import ExifTags, Image

from segdeploy.cli import app
from segdeploy.data.dataset import SegmentationSplit
from segdeploy.data.masks import as_rgb, open_image
from segdeploy.data.spec import load_dataset_spec
from segdeploy.errors import SegdeployError
from segdeploy.runtime import Segmenter

from .helpers import one_line_error


def _rgb(world) -> np.ndarray:
    return np.asarray(Image.open(world["img"]).convert("RGB"))


def test_segmenter_takes_bgr_frames_when_told(world):
    frame = _rgb(world)
    with Segmenter(world["onnx"]) as rgb, Segmenter(world["onnx"], channels="bgr") as bgr:
        classes, logits = rgb(frame, logits=True)
        swapped_classes, swapped_logits = bgr(np.ascontiguousarray(frame[..., ::-1]), logits=True)
        assert np.array_equal(classes, swapped_classes) and np.array_equal(logits, swapped_logits)
        batch = np.stack([frame, frame])[..., ::-1]
        assert np.array_equal(bgr(batch)[1], classes)
        mistaken = rgb(np.ascontiguousarray(frame[..., ::-1]), logits=True)[1]
        assert not np.allclose(mistaken, logits)  # what a BGR frame given as RGB does: other logits


@pytest.mark.parametrize(
    ("shape", "hint"), [((64, 96, 4), "drop the alpha channel"), ((64, 96, 1), "greyscale"), ((64, 96), "greyscale")]
)
def test_a_frame_whose_shape_does_not_fit_is_refused_naming_what_was_expected(world, shape, hint):
    with Segmenter(world["onnx"], channels="bgr") as segment, pytest.raises(SegdeployError) as error:
        segment(np.zeros(shape, np.uint8))
    message = str(error.value)
    assert "uint8 frames HxWx3" in message and "BGR order" in message and hint in message and "\n" not in message


def test_channel_order_is_checked():
    with pytest.raises(SegdeployError, match="channels 'hsv': expected 'rgb' or 'bgr'"):
        Segmenter("model.onnx", channels="hsv")


def _exif_rotated_jpeg(upright: np.ndarray, path) -> None:
    """A JPEG that stores `upright` turned 90 degrees anticlockwise and says so (orientation 6, as a
    phone held upright writes): viewers turn it back."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    Image.fromarray(np.rot90(upright)).save(path, quality=95, exif=exif)


def test_exif_rotated_jpeg_gives_an_upright_mask(world, tmp_path, runner):
    upright = _rgb(world)  # 64 x 96
    _exif_rotated_jpeg(upright, tmp_path / "photo.jpg")
    assert Image.open(tmp_path / "photo.jpg").size == (64, 96)  # stored sideways: 96 rows of 64
    shown = open_image(tmp_path / "photo.jpg")
    assert shown.size == (96, 64)
    shown.save(tmp_path / "shown.png")  # the decoded pixels as a viewer shows them
    args = ["predict", str(world["onnx"]), str(tmp_path / "photo.jpg"), str(tmp_path / "shown.png")]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "o"), "--overlay"])
    assert result.exit_code == 0, result.output
    mask, expected = (Image.open(tmp_path / "o" / "masks" / f"{n}.png") for n in ("photo", "shown"))
    assert mask.size == (96, 64) and np.array_equal(np.asarray(mask), np.asarray(expected))
    overlays = [np.asarray(Image.open(tmp_path / "o" / "overlays" / f"{n}.png")) for n in ("photo", "shown")]
    assert np.array_equal(*overlays)


def test_predict_channels_bgr_reads_files_holding_bgr_pixels(world, tmp_path, runner):
    rgb = _rgb(world)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(np.ascontiguousarray(rgb[..., ::-1])).save(tmp_path / "bgr.png")
    for name, channels in (("rgb", "rgb"), ("bgr", "bgr")):
        args = ["predict", str(world["onnx"]), str(tmp_path / f"{name}.png"), "--out", str(tmp_path / name)]
        result = runner.invoke(app, [*args, "--overlay", "--channels", channels])
        assert result.exit_code == 0, result.output
    for folder in ("masks", "overlays"):
        pictures = [np.asarray(Image.open(tmp_path / n / folder / f"{n}.png")) for n in ("rgb", "bgr")]
        assert np.array_equal(*pictures)


def test_sixteen_bit_and_float_images_follow_the_documented_rules(tmp_path):
    ramp16 = np.array([[0, 257, 32896, 65535]], np.uint16)
    Image.fromarray(ramp16).save(tmp_path / "g16.tif")
    assert np.asarray(as_rgb(open_image(tmp_path / "g16.tif")))[0, :, 0].tolist() == [0, 1, 128, 255]
    ramp = np.array([[0.0, 0.25, 0.5, 1.0]], np.float32)
    Image.fromarray(ramp).save(tmp_path / "f.tif")
    assert np.asarray(as_rgb(open_image(tmp_path / "f.tif")))[0, :, 1].tolist() == [0, 64, 128, 255]
    cv2 = pytest.importorskip("cv2", reason="OpenCV not installed (pip install opencv-python-headless)")
    cv2.imwrite(str(tmp_path / "rgb16.tif"), np.array([[[0, 40000, 65535]]], np.uint16))  # stored as BGR
    assert np.asarray(as_rgb(open_image(tmp_path / "rgb16.tif")))[0, 0].tolist() == [255, 156, 0]  # value // 256
    eight_in_i = Image.fromarray(np.array([[0, 7, 255]], np.int32))
    assert np.asarray(as_rgb(eight_in_i))[0, :, 2].tolist() == [0, 7, 255]  # 32-bit holding 8-bit values
    for values, fragment in (
        (np.array([[0.0, 1.5]], np.float32), "values 0 to 1.5; expected 0..1"),
        (np.array([[-0.5, 0.5]], np.float32), "values -0.5 to 0.5"),
        (np.array([[0.0, np.nan]], np.float32), "NaN or infinite"),
        (np.array([[0, 70000]], np.int32), "values 0 to 70000; expected 0..65535"),
    ):
        Image.fromarray(values).save(tmp_path / "bad.tif")
        with pytest.raises(SegdeployError, match="bad.tif: ") as error:
            as_rgb(open_image(tmp_path / "bad.tif"), tmp_path / "bad.tif")
        assert fragment in str(error.value)


def _video(path, frames: int) -> bytes:
    cv2 = pytest.importorskip("cv2", reason="OpenCV not installed (pip install opencv-python-headless)")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (96, 64))
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (64, 96, 3), dtype=np.uint8))
    writer.release()
    return path.read_bytes()


def test_a_truncated_video_says_how_many_frames_were_read_and_writes_nothing(world, tmp_path, runner):
    data = _video(tmp_path / "clip.avi", 10)
    (tmp_path / "clip.avi").write_bytes(data[: len(data) // 2])
    Image.open(world["img"]).save(tmp_path / "a.png")
    args = ["predict", str(world["onnx"]), str(tmp_path / "a.png"), str(tmp_path / "clip.avi")]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "o")])
    one_line_error(result, "clip.avi", "video ended after 5 of the 10 frames its header announces")
    assert not (tmp_path / "o").exists()


def test_an_image_named_like_a_video_frame_is_refused_before_anything_is_written(world, tmp_path, runner):
    _video(tmp_path / "clip.avi", 2)
    Image.open(world["img"]).save(tmp_path / "clip_000001.png")
    args = ["predict", str(world["onnx"]), str(tmp_path / "clip.avi"), str(tmp_path / "clip_000001.png")]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "o")])
    one_line_error(result, "clip_000001.png", "clip.avi", "would have the name of a frame")
    assert not (tmp_path / "o").exists()


@settings(max_examples=40, deadline=None)
@given(arrays(np.float32, (3, 4), elements=st.floats(0, 1, width=32, allow_subnormal=False)))
def test_float_images_in_0_to_1_scale_by_255(tmp_path_factory, values):
    path = tmp_path_factory.mktemp("float") / "f.tif"
    Image.fromarray(values).save(path)
    rgb = np.asarray(as_rgb(open_image(path), path))
    assert np.array_equal(rgb[..., 0], np.round(values.astype(np.float64) * 255).astype(np.uint8))
    assert np.array_equal(rgb[..., 0], rgb[..., 2])


def test_a_data_set_reads_exif_rotated_photos_upright(world, tmp_path):
    """The mask was drawn on the photo as viewers show it: before, its size did not match the stored pixels."""
    upright = _rgb(world)
    _exif_rotated_jpeg(upright, tmp_path / "p.jpg")
    mask = np.zeros(upright.shape[:2], np.uint8)
    mask[:10, :20] = 1  # top-left, as shown
    Image.fromarray(mask).save(tmp_path / "p.png")
    (tmp_path / "d.yaml").write_text(
        "root: .\nimages: '{id}.jpg'\nmasks: '{id}.png'\nmask_encoding: index\nsplits: {val: [p]}\nclasses:\n"
        "  - {name: a, color: [0, 0, 0]}\n  - {name: b, color: [255, 0, 0]}\n"
    )
    frame, labels = SegmentationSplit(load_dataset_spec(tmp_path / "d.yaml"), "val")[0]
    assert frame.shape == (64, 96, 3) and np.array_equal(labels, mask)
    assert np.abs(frame.astype(int) - upright).mean() < 8  # the same picture, up to JPEG loss
