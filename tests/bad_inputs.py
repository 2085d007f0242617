"""The catalogue of bad and unusual inputs: per row, the input, the command, a fragment of the one-line
message expected and the exit code. tests/test_bad_inputs.py runs every row and also checks that no
traceback is printed, that nothing is written beyond what the row allows, and that the temp dir stays
clean.

A row's command is a CLI argument string (shlex-split after `str.format` with the paths of the shared
fixtures and of the row's own folder) or `py:NAME`, a call of the Python API from PY_CASES. Placeholders:
{tmp} the row's folder (also the working directory), {data} the tiny data set's YAML, {bad_data} that YAML
with the row's `data` overrides, {recipe} a tiny recipe YAML, {bad_recipe} it with the row's `recipe`
overrides, {exp} an export folder (of a tiny user model), {onnx}/{ckpt} its model.onnx/model.pt, {calib} a
calibration set, {images} the data set's image folder, {img} one of its images. `files` are made in {tmp}
before the command runs: bytes, text, or a maker function. Rows that exit 0 name the paths under {tmp}
they may write, and their fragment must appear on stdout; a failing row names only what another writer
it simulates writes meanwhile (a race).

391 rows. The first 215 were run on 0d85a41, before issue 13's fixes: 91 of them failed (tracebacks,
overwritten or half-written files, wrong or missing messages; `predict --size 8192` ran out of memory).
The 6 `py:` rows added when option checks moved into the library check that the Python API gives the
CLI's messages. The 4 `inspect` rows came with that command, the 6 `--quantizer`/`--modelopt-python` rows
with the ModelOpt quantizer (issue 15). The 14 rows of the issue 21 block came with the stored reference
that parity uses without PyTorch; the issue 22 block with the OpenVINO backend; the issue 23 blocks with
frames, tiling and coverage. The 80 rows of the issue 24 block came with issue 24, by kind:
files segdeploy trusts 34, graphs that are not what they claim 7, checkpoint and recipe 8, stray
launcher variables 4, training numerics 7, concurrent and killed runs 6, data and recipe files 5,
suffixes and labels 2, the disk 6, offline 1; its second pass (rows at the block's end): concurrent
and killed runs 3, predict's input folders 5, data sets and calibration sets 3,
the disk 5 (2 of them skip as root).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

NON_UTF8 = b"name: caf\xe9\nroot: .\n"


@dataclass(frozen=True)
class Case:
    name: str
    command: str
    fragment: str
    exit_code: int = 2
    files: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] | None = None  # overrides of the tiny data set's YAML, written as {bad_data}
    recipe: dict[str, Any] | None = None  # overrides of the tiny recipe, written as {bad_recipe}
    writes: tuple[str, ...] = ()  # paths under {tmp} (with all below them) a succeeding row (or a race) may write
    requires: str = ""  # a module the row needs (an optional extra); without it the row skips
    permissions: bool = False  # the row relies on file permissions, which root ignores: skipped as root


# --- makers: (path to create, shared fixture paths) -------------------------------------------------


def _export_copy(mutate: Callable[[Path], None] | None = None) -> Callable[[Path, dict[str, Path]], None]:
    """A hard-linked copy of the shared export folder, then `mutate` on it (files it changes are rewritten)."""

    def make(path: Path, ctx: dict[str, Path]) -> None:
        path.mkdir(parents=True)
        for source in ctx["exp"].iterdir():
            os.link(source, path / source.name)
        if mutate is not None:
            mutate(path)

    return make


def _rewrite(path: Path, data: bytes) -> None:
    path.unlink()  # a hard link: never write through it into the shared fixture
    path.write_bytes(data)


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    _rewrite(path, bytes(data))


def _manifest_edit(edit: Callable[[dict[str, Any]], None]) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        manifest = json.loads((folder / "manifest.json").read_text())
        edit(manifest)
        _rewrite(folder / "manifest.json", json.dumps(manifest).encode())

    return mutate


def _image(path: Path, ctx: dict[str, Path]) -> None:
    shutil.copyfile(ctx["img"], path)


def _truncated_png(path: Path, ctx: dict[str, Path]) -> None:
    data = ctx["img"].read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _png16(path: Path, ctx: dict[str, Path]) -> None:
    grey = (np.asarray(Image.open(ctx["img"]).convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(grey).save(path)


def _huge_png(path: Path, ctx: dict[str, Path]) -> None:
    """A PNG whose header says 20,000 x 20,000 (400 MP) RGB, with one empty data chunk (issue 23)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"") + chunk(b"IEND", b""))


def _tiff(path: Path, ctx: dict[str, Path]) -> None:
    Image.open(ctx["img"]).convert("RGB").save(path, format="TIFF")


def _folder_of(*makers: tuple[str, Any]) -> Callable[[Path, dict[str, Path]], None]:
    def make(path: Path, ctx: dict[str, Path]) -> None:
        path.mkdir(parents=True)
        for name, maker in makers:
            maker(path / name, ctx)

    return make


def _data_copy(truncated: str) -> Callable[[Path, dict[str, Path]], None]:
    """A hard-linked copy of the tiny data set's images and masks, with image `truncated` cut in half."""

    def make(path: Path, ctx: dict[str, Path]) -> None:
        for folder in ("images", "masks"):
            (path / folder).mkdir(parents=True)
            for source in (ctx["data"].parent / folder).iterdir():
                os.link(source, path / folder / source.name)
        image = path / "images" / f"{truncated}.png"
        data = image.read_bytes()
        _rewrite(image, data[: len(data) // 2])

    return make


def _empty_folder(path: Path, ctx: dict[str, Path]) -> None:
    path.mkdir(parents=True)


def _pickle_with_code(path: Path, ctx: dict[str, Path]) -> None:
    import torch

    torch.save({"state_dict": {}, "args": argparse.Namespace(lr=1)}, path)


def _plain_state_dict(path: Path, ctx: dict[str, Path]) -> None:
    import torch

    torch.save({"conv.weight": torch.zeros(8, 3, 3, 3)}, path)


def _onnx_without_metadata(path: Path, ctx: dict[str, Path]) -> None:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def _no_modelopt(path: Path, ctx: dict[str, Path]) -> None:
    """An interpreter whose environment has no nvidia-modelopt: every call fails as the version probe would."""
    path.write_text('#!/bin/sh\necho "PackageNotFoundError: nvidia-modelopt" >&2\nexit 1\n')
    path.chmod(0o755)


def _calibration_copy(path: Path, ctx: dict[str, Path]) -> None:
    shutil.copytree(ctx["calib"], path)


def _split_file(ids: str) -> Callable[[Path, dict[str, Path]], None]:
    def make(path: Path, ctx: dict[str, Path]) -> None:
        path.write_text(ids)

    return make


def _bench_json(path: Path, ctx: dict[str, Path]) -> None:
    path.write_text(json.dumps({"format": "segdeploy.bench/1", "rows": []}))


# --- the Python API rows ------------------------------------------------------------------------------


def _segment(frames: Any, path_key: str = "onnx", **options: Any) -> Callable[[dict[str, Path]], Any]:
    def call(ctx: dict[str, Path]) -> Any:
        from segdeploy.runtime import Segmenter

        return Segmenter(ctx[path_key], **options)(frames)

    return call


def _bench_config(**changes: Any) -> Callable[[dict[str, Path]], Any]:
    def call(ctx: dict[str, Path]) -> Any:
        from segdeploy.bench.runner import BenchConfig, run_bench

        return run_bench([ctx["onnx"]], BenchConfig(shapes=[(64, 96)], memory=False, **changes), log=lambda _: None)

    return call


def _sidecar_non_utf8(ctx: dict[str, Path]) -> Any:
    from segdeploy.tensorrt.sidecar import read_engine_manifest

    return read_engine_manifest(ctx["tmp"] / "model.plan")


def _export_api(**changes: Any) -> Callable[[dict[str, Path]], Any]:
    def call(ctx: dict[str, Path]) -> Any:
        from segdeploy.export.pipeline import export_artifacts
        from segdeploy.recipes import load_recipe

        return export_artifacts(load_recipe(str(ctx["recipe"])), None, ctx["tmp"] / "e", log=lambda _: None, **changes)

    return call


def _train_options(**values: Any) -> Callable[[dict[str, Path]], Any]:
    def call(ctx: dict[str, Path]) -> Any:
        from segdeploy.recipes import TrainSettings
        from segdeploy.train.options import TrainOptions

        return TrainOptions(**values).apply(TrainSettings())

    return call


def _precision_flags(**values: Any) -> Callable[[dict[str, Path]], Any]:
    def call(ctx: dict[str, Path]) -> Any:
        from segdeploy.quantize.pipeline import PrecisionOptions

        return PrecisionOptions.from_flags(**{k: ctx["calib"] if v == "{calib}" else v for k, v in values.items()})

    return call


def _build_flags(**values: Any) -> Callable[[dict[str, Path]], Any]:
    def call(ctx: dict[str, Path]) -> Any:
        from segdeploy.tensorrt.options import BuildOptions

        return BuildOptions.from_flags(**{"fp16": False, "int8": False, "calibration": None, **values})

    return call


def _spec(**overrides: Any) -> Callable[[dict[str, Path]], Any]:
    def call(ctx: dict[str, Path]) -> Any:
        from segdeploy.data.dataset import SegmentationSplit
        from segdeploy.data.spec import load_dataset_spec

        return SegmentationSplit(load_dataset_spec(ctx["bad_data"]), "train")

    return call


# issue 21: parity where PyTorch is not installed
def _parity_without_torch(ctx: dict[str, Path]) -> Any:
    from unittest import mock

    from segdeploy import stored_parity
    from segdeploy.data.spec import load_dataset_spec

    with mock.patch.object(stored_parity, "torch_installed", lambda: False):
        return stored_parity.check_parity(ctx["tmp"] / "x", load_dataset_spec(ctx["data"]))


def _tiled_without_rasterio(ctx: dict[str, Path]) -> Any:
    """predict --tile on a TIFF where `import rasterio` fails (issue 23)."""
    import sys

    from segdeploy.look.predict import predict

    saved = sys.modules.get("rasterio")
    sys.modules["rasterio"] = None  # type: ignore[assignment]  # an import of it now raises ImportError
    try:
        return predict(ctx["onnx"], [ctx["tmp"] / "ortho.tif"], ctx["tmp"] / "p", tile=64, show_progress=False)
    finally:
        if saved is None:
            del sys.modules["rasterio"]
        else:
            sys.modules["rasterio"] = saved


PY_CASES: dict[str, Callable[[dict[str, Path]], Any]] = {
    "zero_size_frame": _segment(np.zeros((0, 0, 3), np.uint8)),
    "zero_width_frame": _segment(np.zeros((64, 0, 3), np.uint8)),
    "empty_batch": _segment(np.zeros((0, 64, 96, 3), np.uint8)),
    "float_frame": _segment(np.zeros((64, 96, 3), np.float32)),
    "four_channels": _segment(np.zeros((64, 96, 4), np.uint8)),
    "flat_frame": _segment(np.zeros((64,), np.uint8)),
    "runtime_checkpoint": _segment(np.zeros((64, 96, 3), np.uint8), "ckpt"),
    "runtime_threads": _segment(np.zeros((64, 96, 3), np.uint8), threads=-1),
    "runtime_tampered": _segment(np.zeros((64, 96, 3), np.uint8), "tampered"),
    "runtime_missing": _segment(np.zeros((64, 96, 3), np.uint8), "missing"),
    "bench_api_iterations": _bench_config(iterations=0),
    "bench_api_threads": _bench_config(threads=-1),
    "bench_api_warmup": _bench_config(warmup=-1),
    "sidecar_non_utf8": _sidecar_non_utf8,
    "export_api_opset": _export_api(opset=5),
    "split_api_duplicates": _spec(),
    "tiled_without_rasterio": _tiled_without_rasterio,
    "train_api_loss": _train_options(loss="l2"),
    "train_api_class_weights": _train_options(class_weights="a,b,c"),
    "precision_api_int8": _precision_flags(int8=True),
    "precision_api_method": _precision_flags(int8=True, calibration="{calib}", method="best"),
    "build_api_fp16_int8": _build_flags(fp16=True, int8=True),
    "build_api_calib_batch": _build_flags(calib_batch=0),
    "parity_api_without_torch": _parity_without_torch,  # issue 21
}

# --- the catalogue ------------------------------------------------------------------------------------


def _classes(*colours: Any, names: str = "soil crop weed") -> dict[str, Any]:
    """A data set override with one class per colour, named from `names`."""
    return {"classes": [{"name": n, "color": c} for n, c in zip(names.split(), colours)]}


BINARY = {"mask_encoding": "binary", **_classes([0, 0, 0], [1, 1, 1], names="a b")}
_DS = "calibrate --data {bad_data} --num 8 --out {tmp}/cal"  # the cheapest full read of a data set
_TRAIN = "train {recipe} --data {data} --out {tmp}/run"
_EXPORT = "export {recipe} --out {tmp}/e"
_MODELOPT = _EXPORT + " --int8 --calib {calib} --quantizer modelopt"
_BENCH = "bench {onnx} --iterations 2 --warmup 0 --no-memory"
_PREDICT = "predict {onnx} {img} --out {tmp}/p"
_TAMPERED_ONNX = {"x": _export_copy(lambda f: _flip_last_byte(f / "model.onnx"))}
_TAMPERED_PT = {"x": _export_copy(lambda f: _flip_last_byte(f / "model.pt"))}


# issue 21: the stored reference (reference.npz) that parity uses without PyTorch
def _reference_edit(edit: Callable[[dict[str, np.ndarray]], None]) -> dict[str, Any]:
    """An export copy whose reference.npz has `edit` applied to its arrays, the manifest updated to match."""

    def mutate(folder: Path) -> None:
        path = folder / "reference.npz"
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        edit(arrays)
        path.unlink()  # a hard link: never write through it into the shared fixture
        np.savez_compressed(path, **arrays)  # type: ignore[arg-type]
        _relist_reference(folder)

    return {"x": _export_copy(mutate)}


def _relist_reference(folder: Path) -> None:
    """Record reference.npz's current sha256 in the manifest, as an export that wrote it would."""
    import hashlib

    digest = hashlib.sha256((folder / "reference.npz").read_bytes()).hexdigest()
    _manifest_edit(lambda m: m["artifacts"]["reference.npz"].update(sha256=digest))(folder)


def _not_an_npz(folder: Path) -> None:
    _rewrite(folder / "reference.npz", b"x")
    _relist_reference(folder)


def _without_reference(folder: Path) -> None:
    """An export made before references were stored: no reference.npz, none in the manifest."""
    (folder / "reference.npz").unlink()
    _manifest_edit(lambda m: m["artifacts"].pop("reference.npz"))(folder)


CASES: list[Case] = [
    # data set YAML, read by calibrate
    Case(
        "data non-UTF-8", "calibrate --data {tmp}/d.yaml --num 8 --out {tmp}/cal", "UTF-8", files={"d.yaml": NON_UTF8}
    ),
    Case(
        "data YAML syntax",
        "calibrate --data {tmp}/d.yaml --num 8 --out {tmp}/cal",
        "not readable YAML",
        files={"d.yaml": "a: [1, 2\n"},
    ),
    Case(
        "data top-level list",
        "calibrate --data {tmp}/d.yaml --num 8 --out {tmp}/cal",
        "expected a mapping",
        files={"d.yaml": "- 1\n- 2\n"},
    ),
    Case("data missing file", "calibrate --data {tmp}/none.yaml --num 8 --out {tmp}/cal", "file not found"),
    Case("data is a folder", "calibrate --data {tmp} --num 8 --out {tmp}/cal", "not readable"),
    Case("data unknown key", _DS, "unknown key 'colour'", data={"colour": 1}),
    Case("data no classes", _DS, "classes", data={"classes": None}),
    Case("data one class", _DS, "at least two classes", data=_classes([0, 0, 0], names="a")),
    Case("data bad encoding", _DS, "is not one of", data={"mask_encoding": "png"}),
    Case("data binary with 3 classes", _DS, "exactly two classes", data={"mask_encoding": "binary"}),
    Case(
        "data rgb same colours",
        _DS,
        "distinct",
        data=_classes([0, 0, 0], [0, 0, 0], [1, 1, 1], names="a b c"),
    ),
    Case("data images without {id}", _DS, "placeholder", data={"images": "images/x.png"}),
    Case("data masks without {id}", _DS, "placeholder", data={"masks": "masks/x.png"}),
    Case("data no splits", _DS, "give 'splits'", data={"splits": None}),
    Case("data ignore_color 300", _DS, "0..255", data={"ignore_color": [300, 0, 0]}),
    Case("data ignore_color negative", _DS, "0..255", data={"ignore_color": [0, -1, 0]}),
    Case("data ignore_color 2 values", _DS, "expected 3 values", data={"ignore_color": [0, 0]}),
    Case(
        "data class colour 256",
        _DS,
        "0..255",
        data=_classes([0, 0, 0], [0, 256, 0], [255, 0, 0]),
    ),
    Case("data ignore_index 257", _DS, "0..255", data={"ignore_index": 257}),
    Case("data ignore_index -1", _DS, "0..255", data={"ignore_index": -1}),
    Case("data ignore_index is a class", _DS, "is class 'crop'", data={"ignore_index": 1}),
    Case("data ignore_index text", _DS, "expected int", data={"ignore_index": "void"}),
    Case("data resize 0x0", _DS, "resize", data={"resize": [0, 0]}),
    Case("data resize negative", _DS, "resize", data={"resize": [-64, 96]}),
    Case("data resize 3 values", _DS, "expected 2 values", data={"resize": [1, 2, 3]}),
    Case("data random_split 1.5", _DS, "fraction", data={"splits": None, "random_split": {"val": 1.5}}),
    Case("data random_split -0.5", _DS, "fraction", data={"splits": None, "random_split": {"val": -0.5}}),
    Case("data random_split text", _DS, "expected a number", data={"splits": None, "random_split": {"val": "half"}}),
    Case("data random_split unknown key", _DS, "unknown key", data={"splits": None, "random_split": {"test": 0.1}}),
    Case(
        "data duplicate ids",
        _DS,
        "more than once: 000",
        data={"splits": {"train": ["000", "000", "001", "002", "003", "004", "005", "006", "007"], "val": ["008"]}},
    ),
    Case(
        "data missing ids together",
        _DS,
        "3 of 11 ids of split 'train' have none: x1, x2, x3",
        data={
            "splits": {
                "train": ["000", "001", "002", "003", "x1", "004", "x2", "005", "x3", "006", "007"],
                "val": ["008"],
            }
        },
    ),
    Case("data missing masks", _DS, "unpaired image", data={"masks": "nomasks/{id}.png"}),
    Case("data split file missing", _DS, "not readable", data={"splits": {"train": {"file": "nope.txt"}}}),
    Case(
        "data split file non-UTF-8",
        _DS,
        "not readable",
        data={"splits": {"train": {"file": "{tmp}/s.txt"}}},
        files={"s.txt": b"\xff\xfe000\n"},
    ),
    Case(
        "data split file with duplicates",
        _DS,
        "more than once",
        data={"splits": {"train": {"file": "{tmp}/s.txt"}}},
        files={"s.txt": _split_file("000\n001\n000\n")},
    ),
    Case("data split not there", "calibrate --data {data} --split test --num 8 --out {tmp}/cal", "no split 'test'"),
    Case("data empty split", _DS, "is empty", data={"splits": {"train": [], "val": ["008"]}}),
    Case(
        "data image folder missing",
        _DS,
        "image folder",
        data={"splits": None, "random_split": {"val": 0.2}, "images": "none/{id}.png"},
    ),
    Case(
        "data no image matches",
        _DS,
        "no images match",
        data={"splits": None, "random_split": {"val": 0.2}, "images": "images/{id}.jpg"},
    ),
    Case(
        "data colour as text",
        _DS,
        "expected a list",
        data=_classes("black", [0, 255, 0], [255, 0, 0]),
    ),
    Case("data index masks are RGB", _DS, "single-channel", data={"mask_encoding": "index"}),
    Case(
        "data colour not in class list",
        _DS,
        "is not in the class list",
        data=_classes([0, 0, 1], [0, 255, 0], [255, 0, 0]),
    ),
    Case("data truncated image", _DS, "005.png", data={"root": "{tmp}/ds"}, files={"ds": _data_copy("005")}),
    # recipe YAML, read by export
    Case("recipe non-UTF-8", "export {tmp}/r.yaml --out {tmp}/e", "UTF-8", files={"r.yaml": NON_UTF8}),
    Case("recipe opset 5", "export {bad_recipe} --out {tmp}/e", "opset 5", recipe={"export": {"opset": 5}}),
    Case("recipe opset 22", "export {bad_recipe} --out {tmp}/e", "opset 22", recipe={"export": {"opset": 22}}),
    Case("recipe std zero", "export {bad_recipe} --out {tmp}/e", "std", recipe={"std": [0, 0, 0]}),
    Case("recipe std negative", "export {bad_recipe} --out {tmp}/e", "std", recipe={"std": [0.2, -0.2, 0.2]}),
    Case("recipe input_size 0", "export {bad_recipe} --out {tmp}/e", "input_size", recipe={"input_size": [0, 0]}),
    Case("recipe crop 0", "export {bad_recipe} --out {tmp}/e", "train.crop", recipe={"train": {"crop": [0, 0]}}),
    Case(
        "recipe crop negative", "export {bad_recipe} --out {tmp}/e", "train.crop", recipe={"train": {"crop": [-1, 64]}}
    ),
    Case("recipe epochs 0", "export {bad_recipe} --out {tmp}/e", "train.epochs", recipe={"train": {"epochs": 0}}),
    Case("recipe repeats 0", "export {bad_recipe} --out {tmp}/e", "train.repeats", recipe={"train": {"repeats": 0}}),
    Case(
        "recipe scale inverted",
        "export {bad_recipe} --out {tmp}/e",
        "train.scale",
        recipe={"train": {"scale": [1.5, 0.5]}},
    ),
    Case(
        "recipe batch range",
        "export {bad_recipe} --out {tmp}/e",
        "1 <= min <= opt <= max",
        recipe={"export": {"batch": [2, 1, 8]}},
    ),
    Case(
        "recipe probe outside range",
        "export {bad_recipe} --out {tmp}/e",
        "outside the export",
        recipe={"export": {"probe_sizes": [[2048, 2048]]}},
    ),
    Case("recipe unknown name", "export nosuchrecipe --out {tmp}/e", "unknown recipe 'nosuchrecipe'"),
    Case("recipe path missing", "export {tmp}/none.yaml --out {tmp}/e", "recipe file not found"),
    Case("recipe one class", "export {bad_recipe} --out {tmp}/e", "num_classes", recipe={"num_classes": 1}),
    Case(
        "recipe class weights",
        "export {bad_recipe} --out {tmp}/e",
        "class_weights",
        recipe={"train": {"class_weights": [1, 2]}},
    ),
    Case("recipe unknown key", "export {bad_recipe} --out {tmp}/e", "unknown key", recipe={"colour": 1}),
    Case("recipe schedule", "export {bad_recipe} --out {tmp}/e", "is not one of", recipe={"train": {"schedule": "x"}}),
    Case("recipe lr text", "export {bad_recipe} --out {tmp}/e", "expected a number", recipe={"train": {"lr": "fast"}}),
    Case("recipe lr zero", "export {bad_recipe} --out {tmp}/e", "train.lr", recipe={"train": {"lr": 0}}),
    Case(
        "recipe architecture",
        "export {bad_recipe} --out {tmp}/e",
        "unknown architecture",
        recipe={"architecture": "nonet"},
    ),
    # train options
    Case("train --epochs 0", _TRAIN + " --epochs 0", "train.epochs 0: must be at least 1"),
    Case("train --epochs -1", _TRAIN + " --epochs -1", "train.epochs -1: must be at least 1"),
    Case("train --batch 0", _TRAIN + " --batch 0", "train.batch_size 0: must be at least 1"),
    Case("train --batch -3", _TRAIN + " --batch -3", "train.batch_size -3: must be at least 1"),
    Case("train --batch above the data", _TRAIN + " --batch 64", "fewer than one batch"),
    Case("train --crop 0x0", _TRAIN + " --crop 0x0", "size '0x0'"),
    Case("train --crop text", _TRAIN + " --crop big", "size 'big'"),
    Case("train --crop negative", _TRAIN + " --crop -5x10", "size '-5x10'"),
    Case("train --lr 0", _TRAIN + " --lr 0", "train.lr"),
    Case("train --lr -1", _TRAIN + " --lr -1", "train.lr"),
    Case("train --loss", _TRAIN + " --loss l2", "--loss 'l2'"),
    Case("train --class-weights text", _TRAIN + " --class-weights a,b,c", "--class-weights"),
    Case("train --class-weights count", _TRAIN + " --class-weights 1,2", "class_weights has 2 values"),
    Case("train --device cuda", _TRAIN + " --device cuda", "CUDA is not available"),
    Case("train --device bogus", _TRAIN + " --device tpu7", "--device 'tpu7'"),
    Case("train --resume nothing", _TRAIN + " --resume {tmp}/run/last.pt", "last.pt"),
    Case("train existing best.pt", _TRAIN, "already exists", files={"run/best.pt": b"x"}),
    Case("train --out is a file", "train {recipe} --data {data} --out {tmp}/f", "not a folder", files={"f": b"x"}),
    Case("train --model bad module", _TRAIN + " --model nosuch.module:f", "cannot import module"),
    Case("train --model no factory", _TRAIN + " --model tests.fixtures.user_models:nope", "no callable"),
    Case("train --data missing", "train {recipe} --data {tmp}/none.yaml --out {tmp}/run", "file not found"),
    Case(
        "train --data non-UTF-8",
        "train {recipe} --data {tmp}/d.yaml --out {tmp}/run",
        "UTF-8",
        files={"d.yaml": NON_UTF8},
    ),
    # export options
    Case("export --opset 5", _EXPORT + " --opset 5", "opset 5 is not supported; choose 13 to 21"),
    Case("export --opset 99", _EXPORT + " --opset 99", "opset 99"),
    Case("export --int8 without --calib", _EXPORT + " --int8", "--int8 needs --calib"),
    Case("export --calib without --int8", _EXPORT + " --calib {calib}", "only used with --int8"),
    Case("export --calib-method", _EXPORT + " --int8 --calib {calib} --calib-method best", "--calib-method 'best'"),
    Case("export --calib not a set", _EXPORT + " --int8 --calib {tmp}", "not a calibration set"),
    Case("export --calib size misfit", "export unet --out {tmp}/e --int8 --calib {calib}", "does not fit"),
    Case("export --max-miou-drop -1", _EXPORT + " --int8 --calib {calib} --max-miou-drop -1", "--max-miou-drop"),
    Case("export --val-split", _EXPORT + " --int8 --calib {calib} --val-split test", "no split 'test'"),
    Case("export --quantizer typo", _EXPORT + " --int8 --calib {calib} --quantizer modelop", "--quantizer 'modelop'"),
    Case("export --quantizer without --int8", _EXPORT + " --quantizer modelopt", "only used with --int8"),
    Case("export --modelopt-python missing", _MODELOPT + " --modelopt-python {tmp}/nope", "cannot run it"),
    Case(
        "export --modelopt-python not a program",
        _MODELOPT + " --modelopt-python {tmp}/py",
        "cannot run it",
        files={"py": b"not a program"},
    ),
    Case(
        "export --modelopt-python without ModelOpt",
        _MODELOPT + " --modelopt-python {tmp}/py",
        "no nvidia-modelopt",
        files={"py": _no_modelopt},
    ),
    Case(
        "export --quantizer modelopt percentile",
        _MODELOPT + " --modelopt-python {tmp}/nope --calib-method percentile",  # refused before any probe
        "minmax or entropy only",
    ),
    Case("export --checkpoint missing", _EXPORT + " --checkpoint {tmp}/none.pt", "checkpoint not found"),
    Case(
        "export --checkpoint garbage",
        _EXPORT + " --checkpoint {tmp}/g.pt",
        "not a readable PyTorch checkpoint",
        files={"g.pt": b"garbage"},
    ),
    Case(
        "export --checkpoint with code",
        _EXPORT + " --checkpoint {tmp}/c.pt",
        "refused",
        files={"c.pt": _pickle_with_code},
    ),
    Case(
        "export --checkpoint plain dict",
        "export --checkpoint {tmp}/s.pt --out {tmp}/e",
        "plain state dict",
        files={"s.pt": _plain_state_dict},
    ),
    Case(
        "export --checkpoint misfit",
        _EXPORT + " --checkpoint {tmp}/s.pt",
        "weights do not fit",
        files={"s.pt": _plain_state_dict},
    ),
    Case("export --out is a file", "export {recipe} --out {tmp}/f", "not a folder", files={"f": b"x"}),
    Case(
        "export existing without --force",
        "export {recipe} --out {tmp}/x",
        "already exists",
        files={"x": _export_copy()},
    ),
    Case("export --model bad", "export --model nosuch:f --out {tmp}/e", "cannot import module"),
    Case("export --encoder bad", "export unet --encoder nosuch --out {tmp}/e", "nosuch"),
    Case("export fixed encoder", "export lraspp --encoder resnet18 --out {tmp}/e", "encoder"),
    Case(
        "export TensorRT hint intact",
        "export {recipe} --out {tmp}/e",
        "pip install 'segdeploy[tensorrt]'",
        0,
        writes=("e",),
    ),
    Case("export path with [/]", "export {recipe} --out {tmp}/a[/]b", "a[/]b", 0, writes=("a[",)),
    # calibrate options
    Case("calibrate --num 0", "calibrate --data {data} --num 0 --out {tmp}/cal", "at least 8"),
    Case("calibrate --num -3", "calibrate --data {data} --num -3 --out {tmp}/cal", "at least 8"),
    Case("calibrate --num too many", "calibrate --data {data} --num 100 --out {tmp}/cal", "fewer than --num 100"),
    Case("calibrate --recipe", "calibrate --data {data} --num 8 --recipe nope --out {tmp}/cal", "unknown recipe"),
    Case(
        "calibrate existing",
        "calibrate --data {data} --num 8 --out {tmp}/c",
        "already exists",
        files={"c": _calibration_copy},
    ),
    Case(
        "calibrate --out is a file", "calibrate --data {data} --num 8 --out {tmp}/f", "not a folder", files={"f": b"x"}
    ),
    Case(
        "calibrate path with [v2]",
        "calibrate --data {data} --num 8 --out {tmp}/cal[v2]",
        "cal[v2]",
        0,
        writes=("cal[v2]",),
    ),
    # parity options
    Case("parity no manifest", "parity {tmp} --data {data}", "no manifest.json"),
    Case(
        "parity manifest non-UTF-8",
        "parity {tmp}/x --data {data}",
        "UTF-8",
        files={"x": _export_copy(lambda f: _rewrite(f / "manifest.json", b'{"format": "\xe9"}'))},
    ),
    Case(
        "parity manifest not JSON",
        "parity {tmp}/x --data {data}",
        "not readable JSON",
        files={"x": _export_copy(lambda f: _rewrite(f / "manifest.json", b"{"))},
    ),
    Case(
        "parity manifest other format",
        "parity {tmp}/x --data {data}",
        "not a segdeploy manifest",
        files={"x": _export_copy(lambda f: _rewrite(f / "manifest.json", b'{"format": "x"}'))},
    ),
    Case("parity --split", "parity {exp} --data {data} --split test", "no split 'test'"),
    Case("parity --batch 0", "parity {exp} --data {data} --batch 0", "--batch 0"),
    Case(
        "parity --json existing",
        "parity {exp} --data {data} --json {tmp}/p.json",
        "already exists",
        files={"p.json": "{}"},
    ),
    Case("parity --json a folder", "parity {exp} --data {data} --json {tmp}", "is a folder"),
    Case("parity --json onto model.onnx", "parity {exp} --data {data} --json {onnx}", "already exists"),
    Case("parity tampered onnx", "parity {tmp}/x --data {data}", "sha256 differs", files=_TAMPERED_ONNX),
    Case("parity tampered reference", "parity {tmp}/x --data {data}", "sha256 differs", files=_TAMPERED_PT),
    Case(
        "parity artifact missing",
        "parity {tmp}/x --data {data}",
        "model.onnx",
        files={"x": _export_copy(lambda f: (f / "model.onnx").unlink())},
    ),
    Case(
        "parity other class count",
        "parity {exp} --data {bad_data}",
        "model has 3 classes",
        data=BINARY,
    ),
    Case(
        "parity class names differ",
        "parity {exp} --data {bad_data}",
        "class names",
        0,
        data=_classes([0, 0, 0], [0, 255, 0], [255, 0, 0], names="ground crop weed"),
    ),
    Case(
        "parity NaN logits",
        "parity {tmp}/x --data {data}",
        "NaN or infinite",
        1,
        files={"x": _export_copy(lambda f: _nan_reference(f))},
    ),
    # bench options
    Case("bench --iterations 0", _BENCH.replace("2", "0", 1), "--iterations 0"),
    Case("bench --iterations -5", "bench {onnx} --iterations -5 --no-memory", "--iterations -5"),
    Case("bench --warmup -1", "bench {onnx} --warmup -1 --no-memory", "--warmup -1"),
    Case("bench --batch 0", _BENCH + " --batch 0", "--batch 0"),
    Case("bench --threads -1", _BENCH + " --threads -1", "--threads -1"),
    Case("bench --duration 0", _BENCH + " --duration 0", "--duration 0"),
    Case("bench --shape 0x0", _BENCH + " --shape 0x0", "size '0x0'"),
    Case("bench --shape text", _BENCH + " --shape big", "size 'big'"),
    Case("bench --shape too large", _BENCH + " --shape 2048x2048", "is not accepted"),
    Case("bench --shape not /32", _BENCH + " --shape 65x97", "multiples of 32"),
    Case("bench --batch too large", _BENCH + " --batch 64", "batch 64 outside"),
    Case("bench --denormals", _BENCH + " --denormals drop", "--denormals 'drop'"),
    Case("bench --plot one shape", _BENCH + " --plot {tmp}/p.png", "--plot needs two"),
    Case("bench --json existing", _BENCH + " --json {tmp}/b.json", "already exists", files={"b.json": "{}"}),
    Case("bench --json onto model.onnx", _BENCH + " --json {onnx}", "already exists"),
    Case(
        "bench --plot existing",
        _BENCH + " --shape 64x96 --shape 96x128 --plot {tmp}/p.png",
        "already exists",
        files={"p.png": b"x"},
    ),
    Case("bench missing artifact", "bench {tmp}/none.onnx --no-memory", "file not found"),
    Case(
        "bench not an artifact", "bench {tmp}/a.txt --no-memory", "not a benchmarkable artifact", files={"a.txt": "x"}
    ),
    Case(
        "bench --torch-variant",
        "bench {ckpt} --torch-variant fast --iterations 1 --no-memory",
        "--torch-variant 'fast'",
    ),
    Case("bench --provider", _BENCH + " --provider NoSuchProvider", "NoSuchProvider not available"),
    Case("bench --device cuda", "bench {ckpt} --device cuda --iterations 1 --no-memory", "CUDA is not available"),
    Case("bench garbage onnx", "bench {tmp}/g.onnx --no-memory", "ONNX Runtime cannot load", files={"g.onnx": b"x"}),
    Case(
        "bench onnx without metadata",
        "bench {tmp}/m.onnx --no-memory",
        "no segdeploy metadata",
        files={"m.onnx": _onnx_without_metadata},
    ),
    Case(
        "bench engine without TensorRT",
        "bench {tmp}/m.plan --no-memory",
        "pip install 'segdeploy[tensorrt]'",
        files={"m.plan": b"x"},
    ),
    Case(
        "bench tampered", "bench {tmp}/x/model.onnx --iterations 1 --no-memory", "sha256 differs", files=_TAMPERED_ONNX
    ),
    # predict options
    Case("predict --alpha 2", _PREDICT + " --alpha 2", "--alpha 2"),
    Case("predict --alpha negative", _PREDICT + " --alpha -0.1", "--alpha -0.1"),
    Case("predict --size outside", _PREDICT + " --size 1024", "--size 1024x1024: shape 1x1024x1024 is not accepted"),
    Case("predict --size beyond memory", _PREDICT + " --size 8192", "is not accepted"),
    Case("predict --size 0", _PREDICT + " --size 0", "size '0'"),
    Case("predict --size text", _PREDICT + " --size big", "size 'big'"),
    Case("predict --size not /32", _PREDICT + " --size 65x97", "multiples of 32"),
    Case("predict --out is a file", "predict {onnx} {img} --out {tmp}/f", "not a folder", files={"f": b"x"}),
    Case(
        "predict existing mask",
        "predict {onnx} {tmp}/in/a.png --out {tmp}/p",
        "already exists",
        files={"in/a.png": _image, "p/masks/a.png": b"x"},
    ),
    Case(
        "predict truncated PNG in a folder",
        "predict {onnx} {tmp}/in --out {tmp}/p",
        "b.png",
        files={"in": _folder_of(("a.png", _image), ("b.png", _truncated_png), ("c.png", _image))},
    ),
    Case("predict not an image", "predict {onnx} {tmp}/a.txt --out {tmp}/p", "not an image", files={"a.txt": "x"}),
    Case("predict garbage PNG", "predict {onnx} {tmp}/a.png --out {tmp}/p", "unreadable image", files={"a.png": b"x"}),
    Case("predict missing input", "predict {onnx} {tmp}/none.png --out {tmp}/p", "file not found"),
    Case(
        "predict empty folder", "predict {onnx} {tmp}/in --out {tmp}/p", "holds no images", files={"in": _empty_folder}
    ),
    Case(
        "predict same stems",
        "predict {onnx} {tmp}/a/x.png {tmp}/b/x.png --out {tmp}/p",
        "same name",
        files={"a/x.png": _image, "b/x.png": _image},
    ),
    Case(
        "predict not an artifact",
        "predict {tmp}/m.txt {img} --out {tmp}/p",
        "not a model artifact",
        files={"m.txt": "x"},
    ),
    Case("predict tampered", "predict {tmp}/x/model.onnx {img} --out {tmp}/p", "sha256 differs", files=_TAMPERED_ONNX),
    Case(
        "predict garbage video", "predict {onnx} {tmp}/v.mp4 --out {tmp}/p", "unreadable video", files={"v.mp4": b"x"}
    ),
    Case(
        "predict engine without TensorRT",
        "predict {tmp}/m.plan {img} --out {tmp}/p",
        "segdeploy[tensorrt]",
        files={"m.plan": b"x"},
    ),
    Case(
        "predict 16-bit PNG",
        "predict {onnx} {tmp}/g.png --out {tmp}/p",
        "wrote 1 masks",
        0,
        files={"g.png": _png16},
        writes=("p",),
    ),
    Case("predict path with [/]", "predict {onnx} {img} --out {tmp}/o[/]p", "o[/]p", 0, writes=("o[",)),
    # report options
    Case("report no manifest", "report {tmp}", "no manifest.json"),
    Case("report no runs", "report {tmp}/x", "no parity or bench JSON", files={"x": _export_copy()}),
    Case(
        "report --runs not a run",
        "report {exp} --runs {tmp}/r.json --out {tmp}/r.html",
        "neither a parity JSON",
        files={"r.json": "{}"},
    ),
    Case(
        "report --runs non-UTF-8",
        "report {exp} --runs {tmp}/r.json --out {tmp}/r.html",
        "UTF-8",
        files={"r.json": b'{"a": "\xe9"}'},
    ),
    Case(
        "report --runs bench lacking fields",
        "report {exp} --runs {tmp}/r.json --out {tmp}/r.html",
        "lacks",
        files={"r.json": _bench_json},
    ),
    Case("report --num -1", "report {exp} --num -1 --out {tmp}/r.html", "--num -1"),
    Case("report existing html", "report {exp} --out {tmp}/r.html", "already exists", files={"r.html": "x"}),
    Case("report --out a folder", "report {exp} --out {tmp}", "is a folder"),
    Case("report tampered", "report {tmp}/x --out {tmp}/r.html", "sha256 differs", files=_TAMPERED_ONNX),
    # compare options
    Case("compare --num 0", "compare {onnx} --data {data} --num 0 --figure {tmp}/c.png", "--num 0"),
    Case("compare --boundary 0", "compare {onnx} --data {data} --boundary 0 --figure {tmp}/c.png", "--boundary 0"),
    Case("compare missing", "compare {tmp}/none.onnx --data {data} --figure {tmp}/c.png", "file not found"),
    Case(
        "compare --figure existing",
        "compare {onnx} --data {data} --figure {tmp}/c.png",
        "already exists",
        files={"c.png": b"x"},
    ),
    Case(
        "compare --json existing",
        "compare {onnx} --data {data} --figure {tmp}/c.png --json {tmp}/c.json",
        "already exists",
        files={"c.json": "{}"},
    ),
    Case("compare --split", "compare {onnx} --data {data} --split test --figure {tmp}/c.png", "no split 'test'"),
    Case(
        "compare other class count",
        "compare {onnx} --data {bad_data} --figure {tmp}/c.png",
        "model has 3 classes",
        data=BINARY,
    ),
    Case(
        "compare tampered",
        "compare {tmp}/x/model.onnx --data {data} --figure {tmp}/c.png",
        "sha256 differs",
        files=_TAMPERED_ONNX,
    ),
    # build options (no TensorRT on this machine: the checks before it, then its install hint)
    Case("build missing", "build {tmp}/none.onnx", "file not found"),
    Case("build --fp16 --int8", "build {onnx} --fp16 --int8", "choose one"),
    Case("build --int8 without --calib", "build {onnx} --int8", "--int8 needs --calib"),
    Case("build --calib-batch 0", "build {onnx} --calib-batch 0", "must be positive"),
    Case("build --workspace 0", "build {onnx} --workspace 0", "must be positive"),
    Case("build without TensorRT", "build {onnx}", "pip install 'segdeploy[tensorrt]'"),
    Case("inspect an ONNX model", "inspect {onnx}", "not a TensorRT engine (kind onnx)"),
    Case("inspect a text file", "inspect {tmp}/notes.txt", "not a TensorRT engine", files={"notes.txt": "x"}),
    Case("inspect missing", "inspect {tmp}/none.plan", "file not found"),
    Case("inspect without TensorRT", "inspect {tmp}/model.plan", "pip install", files={"model.plan": b"engine"}),
    # the Python API: same checks, same messages
    Case("runtime zero-size frame", "py:zero_size_frame", "non-empty"),
    Case("runtime zero-width frame", "py:zero_width_frame", "non-empty"),
    Case("runtime empty batch", "py:empty_batch", "non-empty"),
    Case("runtime float frame", "py:float_frame", "uint8"),
    Case("runtime four channels", "py:four_channels", "RGB"),
    Case("runtime flat frame", "py:flat_frame", "HxWx3"),
    Case("runtime checkpoint", "py:runtime_checkpoint", "not PyTorch checkpoints"),
    Case("runtime threads -1", "py:runtime_threads", "--threads -1"),
    Case("runtime tampered", "py:runtime_tampered", "sha256 differs", files=_TAMPERED_ONNX),
    Case("runtime missing", "py:runtime_missing", "file not found"),
    Case("bench API iterations 0", "py:bench_api_iterations", "--iterations 0"),
    Case("bench API threads -1", "py:bench_api_threads", "--threads -1"),
    Case("bench API warmup -1", "py:bench_api_warmup", "--warmup -1"),
    Case(
        "engine sidecar non-UTF-8",
        "py:sidecar_non_utf8",
        "UTF-8",
        files={"model.plan": b"engine", "model.plan.json": b'{"format": "caf\xe9"}'},
    ),
    Case("export API opset 5", "py:export_api_opset", "opset 5 is not supported"),
    Case("train API --loss", "py:train_api_loss", "--loss 'l2'"),
    Case("train API --class-weights", "py:train_api_class_weights", "--class-weights 'a,b,c'"),
    Case("export API --int8 without --calib", "py:precision_api_int8", "--int8 needs --calib"),
    Case("export API --calib-method", "py:precision_api_method", "--calib-method 'best'"),
    Case("build API --fp16 --int8", "py:build_api_fp16_int8", "choose one"),
    Case("build API --calib-batch 0", "py:build_api_calib_batch", "must be positive"),
    Case(
        "split API duplicates",
        "py:split_api_duplicates",
        "more than once",
        data={"splits": {"train": ["000", "000"], "val": ["008"]}},
    ),
    # issue 21: parity against the stored reference (reference.npz), the default without --data
    Case(
        "parity stored reference missing",
        "parity {tmp}/x",
        "reference.npz: listed in",
        files={"x": _export_copy(lambda f: (f / "reference.npz").unlink())},
    ),
    Case(
        "parity stored reference tampered",
        "parity {tmp}/x",
        "sha256 differs",
        files={"x": _export_copy(lambda f: _flip_last_byte(f / "reference.npz"))},
    ),
    Case(
        "parity stored reference not an npz",
        "parity {tmp}/x",
        "not a readable reference",
        files={"x": _export_copy(_not_an_npz)},
    ),
    Case(
        "parity stored logits of 2 classes",
        "parity {tmp}/x",
        "the model has 3 classes",
        files=_reference_edit(lambda a: a.update(logits=a["logits"][:, :2])),
    ),
    Case(
        "parity stored class maps of another size",
        "parity {tmp}/x",
        "classes are",
        files=_reference_edit(lambda a: a.update(classes=a["classes"][:, :8])),
    ),
    Case(
        "parity stored class out of range",
        "parity {tmp}/x",
        "classes hold class 7; the model has 3",
        files=_reference_edit(lambda a: a["classes"].__setitem__((0, 0, 0), 7)),
    ),
    Case(
        "parity stored frames not uint8",
        "parity {tmp}/x",
        "frames are float32",
        files=_reference_edit(lambda a: a.update(frames=a["frames"].astype(np.float32))),
    ),
    Case(
        "parity export without a stored reference",
        "parity {tmp}/x",
        "export again",
        files={"x": _export_copy(_without_reference)},
    ),
    Case(
        "parity without PyTorch, export without a stored reference",
        "py:parity_api_without_torch",
        "export again",
        files={"x": _export_copy(_without_reference)},
    ),
    Case("parity --reference other", "parity {exp} --reference best", "choose pytorch or stored"),
    Case("parity --reference pytorch without --data", "parity {exp} --reference pytorch", "needs --data"),
    Case("parity stored --split", "parity {exp} --split test", "--split test"),
    Case(
        "parity stored frames' origin malformed",
        "parity {tmp}/x",
        "'frames' is not a data set, split and 2 ids",
        files={
            "x": _export_copy(
                _manifest_edit(
                    lambda m: m["artifacts"]["reference.npz"].update(frames={"source": "dataset", "ids": [1]})
                )
            )
        },
    ),
    Case(
        "parity stored ids not in --data",
        "parity {tmp}/x --data {data} --reference stored",
        "has no image zzz",
        files={
            "x": _export_copy(
                _manifest_edit(
                    lambda m: m["artifacts"]["reference.npz"].update(
                        frames={"source": "dataset", "dataset": "tiny", "split": "val", "ids": ["zzz", "yyy"]}
                    )
                )
            )
        },
    ),
    # issue 23: tiled inference and georeferenced I/O
    Case(
        "predict --tile below the stride",
        _PREDICT + " --tile 16",
        "--tile 16: tiles must be a multiple of the model's stride 32",
    ),
    Case(
        "predict --tile not /32", _PREDICT + " --tile 100", "--tile 100: tiles must be a multiple of the model's stride"
    ),
    Case(
        "predict --tile beyond the export",
        _PREDICT + " --tile 1024",
        "--tile 1024: outside the tile sizes the model takes (32 to 512 px)",
    ),
    Case(
        "predict --overlap = --tile",
        _PREDICT + " --tile 64 --overlap 64",
        "--overlap 64: must be from 0 to less than the tile (64)",
    ),
    Case("predict --overlap negative", _PREDICT + " --overlap -1", "--overlap -1: must be from 0"),
    Case("predict --tile with --size", _PREDICT + " --tile 64 --size 64x96", "--tile with --size 64x96"),
    Case(
        "predict image over the pixel limit",
        "predict {onnx} {tmp}/huge.png --out {tmp}/p",
        "20000x20000 pixels, more than the 250 MP read whole",
        files={"huge.png": _huge_png},
    ),
    Case(
        "predict tiled TIFF without rasterio",
        "py:tiled_without_rasterio",
        "pip install 'segdeploy[geo]'",
        files={"ortho.tif": _tiff},
    ),
]


def _nan_reference(folder: Path) -> None:
    """Make the reference checkpoint give NaN logits, and record its new hash, as a diverged model would."""
    import hashlib

    import torch

    payload = torch.load(folder / "model.pt", weights_only=True)
    payload["state_dict"] = {
        k: v * float("nan") if v.is_floating_point() else v for k, v in payload["state_dict"].items()
    }
    (folder / "model.pt").unlink()
    torch.save(payload, folder / "model.pt")
    digest = hashlib.sha256((folder / "model.pt").read_bytes()).hexdigest()
    _manifest_edit(lambda m: m["artifacts"]["model.pt"].update(sha256=digest))(folder)


# --- issue 23, frames as robot code hands them: channel order, float TIFF, truncated video, names -----


def _float_tiff(*values: float) -> Callable[[Path, dict[str, Path]], None]:
    def make(path: Path, ctx: dict[str, Path]) -> None:
        Image.fromarray(np.resize(np.array(values, np.float32), (64, 96))).save(path)

    return make


def _float_rgb_tiff(path: Path, ctx: dict[str, Path]) -> None:
    import cv2

    cv2.imwrite(str(path), np.full((64, 96, 3), 0.5, np.float32))


def _truncated_video(path: Path, ctx: dict[str, Path]) -> None:
    """An MJPG AVI of 10 frames cut in half: its header still announces 10, 5 decode."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (96, 64))
    noise = np.random.default_rng(0)  # frames of noise: large enough that half the file holds whole frames
    for _ in range(10):
        writer.write(noise.integers(0, 256, (64, 96, 3), dtype=np.uint8))
    writer.release()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _video(path: Path, ctx: dict[str, Path]) -> None:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (96, 64))
    writer.write(np.zeros((64, 96, 3), np.uint8))
    writer.release()


def _jpeg(path: Path, ctx: dict[str, Path]) -> None:
    Image.open(ctx["img"]).convert("RGB").save(path)


PY_CASES.update(
    {
        "bgr_four_channels": _segment(np.zeros((64, 96, 4), np.uint8), channels="bgr"),
        "one_channel": _segment(np.zeros((64, 96, 1), np.uint8)),
        "grey_frame": _segment(np.zeros((64, 96), np.uint8)),
        "channels_hsv": _segment(np.zeros((64, 96, 3), np.uint8), channels="hsv"),
    }
)
CASES += [
    Case("runtime BGR frame of 4 channels", "py:bgr_four_channels", "HxWx3 or NxHxWx3 in BGR order"),
    Case("runtime 1-channel frame", "py:one_channel", "in RGB order (channels='rgb'), got uint8 (64, 96, 1)"),
    Case("runtime greyscale HxW frame", "py:grey_frame", "a greyscale frame: repeat it to 3 channels"),
    Case("runtime channels hsv", "py:channels_hsv", "channels 'hsv': expected 'rgb' or 'bgr'"),
    Case("predict --channels hsv", _PREDICT + " --channels hsv", "--channels 'hsv'"),
    Case(
        "predict float TIFF above 1",
        "predict {onnx} {tmp}/f.tif --out {tmp}/p",
        "float image with values 0 to 2.5; expected 0..1",
        files={"f.tif": _float_tiff(0.0, 2.5)},
    ),
    Case(
        "predict float TIFF with NaN",
        "predict {onnx} {tmp}/f.tif --out {tmp}/p",
        "f.tif: float image holds NaN",
        files={"f.tif": _float_tiff(0.5, float("nan"))},
    ),
    Case(
        "predict float TIFF 0..1",
        "predict {onnx} {tmp}/f.tif --out {tmp}/p",
        "wrote 1 masks",
        0,
        files={"f.tif": _float_tiff(0.0, 0.5, 1.0)},
        writes=("p",),
    ),
    Case(
        "predict float RGB TIFF",
        "predict {onnx} {tmp}/f.tif --out {tmp}/p",
        "convert float RGB to 8-bit",
        files={"f.tif": _float_rgb_tiff},
    ),
    Case(
        "predict truncated video",
        "predict {onnx} {img} {tmp}/v.avi --out {tmp}/p",
        "v.avi: video ended after 5 of the 10 frames its header announces",
        files={"v.avi": _truncated_video},
    ),
    Case(
        "predict image named like a video frame",
        "predict {onnx} {tmp}/v.avi {tmp}/v_000000.png --out {tmp}/p",
        "v_000000.png: its mask v_000000.png would have the name of a frame of",
        files={"v.avi": _video, "v_000000.png": _image},
    ),
    Case(
        "predict same stems, other suffixes",
        "predict {onnx} {tmp}/a/x.png {tmp}/b/x.jpg --out {tmp}/p",
        "same name as",
        files={"a/x.png": _image, "b/x.jpg": _jpeg},
    ),
]


# --- issue 23: segdeploy coverage (class maps, fields, weed patches) -----------------------------------


def _class_map(
    crs: str | None = "EPSG:32632", bands: int = 1, rotation: float = 0
) -> Callable[[Path, dict[str, Path]], None]:
    """A 40x60 class map (soil, crop, weed) with 5 cm pixels in UTM 32N at (500000, 5000000), or without
    georeference when `crs` is None; in EPSG:4326, 5e-7 degree pixels at 9°E 45.1°N."""

    def make(path: Path, ctx: dict[str, Path]) -> None:
        import rasterio
        from rasterio.transform import Affine, from_origin

        labels = (np.arange(40 * 60).reshape(40, 60) % 3).astype(np.uint8)
        profile: dict[str, Any] = {"driver": "GTiff", "width": 60, "height": 40, "count": bands, "dtype": "uint8"}
        origin = (9.0, 45.1, 5e-7, 5e-7) if crs == "EPSG:4326" else (500000, 5000000, 0.05, 0.05)
        if crs is not None:
            profile.update(crs=crs, transform=from_origin(*origin) @ Affine.rotation(rotation))
        with rasterio.open(path, "w", **profile) as dataset:
            dataset.write(np.stack([labels] * bands))

    return make


def _geojson(*geometries: dict[str, Any], crs: str | None = "EPSG:32632") -> str:
    features = [{"type": "Feature", "properties": {"name": f"f{i}"}, "geometry": g} for i, g in enumerate(geometries)]
    document: dict[str, Any] = {"type": "FeatureCollection", "features": features}
    if crs is not None:
        document["crs"] = {"type": "name", "properties": {"name": crs}}
    return json.dumps(document)


def _square(x: float, y: float, side: float = 1.0) -> dict[str, Any]:
    ring = [[x, y], [x + side, y], [x + side, y - side], [x, y - side], [x, y]]
    return {"type": "Polygon", "coordinates": [ring]}


def _without_rasterio(ctx: dict[str, Path]) -> Any:
    """The Python API with rasterio missing (a None entry in sys.modules makes its import fail)."""
    import sys

    from segdeploy.geo.coverage import write_coverage

    saved = sys.modules.get("rasterio")
    sys.modules["rasterio"] = None  # type: ignore[assignment]
    try:
        return write_coverage(ctx["tmp"] / "map.tif", ctx["tmp"] / "c")
    finally:
        if saved is not None:
            sys.modules["rasterio"] = saved
        else:
            del sys.modules["rasterio"]


PY_CASES["coverage_without_rasterio"] = _without_rasterio
_COVERAGE = "coverage {tmp}/map.tif --out {tmp}/c"
_MAP = {"map.tif": _class_map()}
_INSIDE = _square(500000.5, 4999999.5)
CASES += [
    Case("coverage without rasterio", "py:coverage_without_rasterio", "pip install 'segdeploy[geo]'", files=_MAP),
    Case("coverage missing map", _COVERAGE, "file not found"),
    Case("coverage RGB image", _COVERAGE, "3 band(s) of uint8", files={"map.tif": _class_map(bands=3)}),
    Case("coverage not a raster", _COVERAGE, "not a raster GDAL can read", files={"map.tif": "text"}),
    Case(
        "coverage fields without georeference",
        _COVERAGE + " --fields {tmp}/f.geojson",
        "has no georeference",
        files={"map.tif": _class_map(crs=None), "f.geojson": _geojson(_INSIDE)},
    ),
    Case(
        "coverage polygons in a rotated geographic raster",
        _COVERAGE + " --polygons --classes soil,crop,weed",
        "EPSG:4326 with a rotated geotransform",
        files={"map.tif": _class_map(crs="EPSG:4326", rotation=30)},
    ),
    Case(
        "coverage fields outside the raster",
        _COVERAGE + " --fields {tmp}/f.geojson",
        "none of its 1 fields overlaps",
        files={**_MAP, "f.geojson": _geojson(_square(600000, 4000000))},
    ),
    Case(
        "coverage fields in degrees without crs",  # UTM numbers read as RFC 7946 longitude/latitude
        _COVERAGE + " --fields {tmp}/f.geojson",
        "cannot transform",
        files={**_MAP, "f.geojson": _geojson(_INSIDE, crs=None)},
    ),
    Case(
        "coverage fields are points",
        _COVERAGE + " --fields {tmp}/f.geojson",
        "is a Point; fields must be Polygon or MultiPolygon",
        files={**_MAP, "f.geojson": _geojson({"type": "Point", "coordinates": [500000.5, 4999999.5]})},
    ),
    Case(
        "coverage fields unknown CRS",
        _COVERAGE + " --fields {tmp}/f.geojson",
        "CRS 'EPSG:999999' is not readable",
        files={**_MAP, "f.geojson": _geojson(_INSIDE, crs="EPSG:999999")},
    ),
    Case(
        "coverage fields CRS without a transformation",  # Mars (IAU) to Earth
        _COVERAGE + " --fields {tmp}/f.geojson",
        "cannot transform ESRI:104905",
        files={**_MAP, "f.geojson": _geojson(_INSIDE, crs="ESRI:104905")},
    ),
    Case(
        "coverage fields malformed",
        _COVERAGE + " --fields {tmp}/f.geojson",
        "not readable GeoJSON",
        files={**_MAP, "f.geojson": '{"type": "FeatureCollection", "features": ['},
    ),
    Case(
        "coverage fields open ring",
        _COVERAGE + " --fields {tmp}/f.geojson",
        "a ring must be closed",
        files={**_MAP, "f.geojson": _geojson({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]})},
    ),
    Case(
        "coverage fields same name",
        _COVERAGE + " --fields {tmp}/f.geojson",
        "named 'f0'",
        files={**_MAP, "f.geojson": _geojson(_INSIDE, _INSIDE).replace('"f1"', '"f0"')},
    ),
    Case("coverage too few classes", _COVERAGE + " --classes soil,crop", "holds class index 2", files=_MAP),
    Case("coverage empty class name", _COVERAGE + " --classes soil,,weed", "non-empty and distinct", files=_MAP),
    Case("coverage --classes and --model", _COVERAGE + " --classes a,b,c --model {exp}", "choose one", files=_MAP),
    Case("coverage --model not an export", _COVERAGE + " --model {tmp}", "no manifest.json", files=_MAP),
    Case("coverage --polygons unknown class", _COVERAGE + " --polygons", "no class named 'weed'", files=_MAP),
    Case(
        "coverage negative patch area",
        _COVERAGE + " --polygons --classes soil,crop,weed --min-patch-area -1",
        "must be 0 or more",
        files=_MAP,
    ),
    Case(
        "coverage existing output",
        _COVERAGE,
        "already exists; pass --force",
        files={**_MAP, "c/coverage.csv": "kept\n"},
    ),
    Case(
        "coverage with the export's class names",
        _COVERAGE + " --model {exp} --fields {tmp}/f.geojson --polygons --patch-class class2 --min-patch-area 0",
        "wrote",
        exit_code=0,
        files={**_MAP, "f.geojson": _geojson(_INSIDE)},
        writes=("c",),
    ),
]


# --- issue 22: the OpenVINO backend ---------------------------------------------------------------------


def _openvino_runtime(backend: str, **patches: Any) -> Callable[[dict[str, Path]], Any]:
    """Segmenter(onnx, backend=...) with `patches` applied: 'modules' (sys.modules entries) or 'native_bf16'."""

    def call(ctx: dict[str, Path]) -> Any:
        import sys
        from unittest import mock

        from segdeploy.backends import openvino_backend
        from segdeploy.runtime import Segmenter

        with (
            mock.patch.dict(sys.modules, patches.get("modules", {})),
            mock.patch.object(
                openvino_backend, "native_bf16", patches.get("native_bf16", openvino_backend.native_bf16)
            ),
        ):
            return Segmenter(ctx["onnx"], backend=backend)(np.zeros((64, 96, 3), np.uint8))

    return call


def _unreadable_by_openvino(path: Path, ctx: dict[str, Path]) -> None:
    """An ONNX model with an op of a domain no converter knows, and segdeploy's metadata (copied)."""
    import onnx

    source = onnx.load(str(ctx["onnx"]))
    graph = onnx.helper.make_graph(
        [
            onnx.helper.make_node(
                "Frobnicate", [source.graph.input[0].name], [source.graph.output[0].name], domain="acme"
            )
        ],
        "custom",
        [source.graph.input[0]],
        [source.graph.output[0]],
    )
    model = onnx.helper.make_model(graph, opset_imports=[*source.opset_import, onnx.helper.make_opsetid("acme", 1)])
    model.metadata_props.extend(source.metadata_props)
    onnx.save(model, str(path))


PY_CASES.update(
    {
        "openvino_missing": _openvino_runtime("openvino", modules={"openvino": None}),
        "openvino_bf16_not_native": _openvino_runtime("openvino:bf16", native_bf16=lambda core: False),
    }
)
_OV_BENCH = _BENCH + " --backend openvino"
CASES += [
    Case("openvino missing", "py:openvino_missing", 'pip install "segdeploy[openvino]"'),
    Case("openvino BF16 on a CPU without it", "py:openvino_bf16_not_native", "no native BF16", requires="openvino"),
    Case(
        "openvino unreadable op",
        "bench {tmp}/custom.onnx --backend openvino --iterations 2 --warmup 0 --no-memory",
        "no conversion for op acme.Frobnicate",
        files={"custom.onnx": _unreadable_by_openvino},
        requires="openvino",
    ),
    Case("openvino --threads above the cores", _OV_BENCH + " --threads 4096", "--threads 4096: this process may use"),
    Case("--backend unknown", _BENCH + " --backend tflite", "--backend 'tflite': unknown backend"),
    Case("--backend precision it lacks", _BENCH + " --backend onnxruntime:bf16", "takes no precision 'bf16'"),
    Case("parity --backend openvino:int4", "parity {exp} --data {data} --backend openvino:int4", "takes no precision"),
    Case(
        "predict checkpoint --backend openvino",
        _PREDICT.replace("{onnx}", "{ckpt}") + " --backend openvino",
        "--backend openvino does not run it",
    ),  # fmt: skip
]


# --- issue 24: the environment and the files segdeploy trusts -------------------------------------------


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """An edit of a JSON document: the value at `path` ("a/b/c"; the value None deletes the key)."""

    def edit(document: Any) -> None:
        *parents, last = (int(k) if k.isdigit() else k for k in path.split("/"))
        for key in parents:
            document = document[key]
        if value is None:
            del document[last]
        else:
            document[last] = value

    return edit


def _manifest_set(path: str, value: Any) -> dict[str, Any]:
    return {"x": _export_copy(_manifest_edit(_set(path, value)))}


def _onnx_props(**props: str) -> Callable[[Path, dict[str, Path]], None]:
    """A copy of the shared ONNX model (no manifest beside it) with metadata `props` set ('' deletes)."""

    def make(path: Path, ctx: dict[str, Path]) -> None:
        import onnx

        model = onnx.load(str(ctx["onnx"]))
        kept = {p.key: p.value for p in model.metadata_props}
        kept.update(props)
        del model.metadata_props[:]
        for key, value in kept.items():
            if value:
                model.metadata_props.add(key=key, value=value)
        onnx.save(model, str(path))

    return make


def _onnx_meta(path: str, value: Any) -> Callable[[Path, dict[str, Path]], None]:
    def make(target: Path, ctx: dict[str, Path]) -> None:
        meta = json.loads((ctx["exp"] / "manifest.json").read_text())["model"]
        _set(path, value)(meta)
        _onnx_props(**{"segdeploy.meta": json.dumps(meta)})(target, ctx)

    return make


def _sidecar(edit: Callable[[dict[str, Any]], None] | None = None) -> Callable[[Path, dict[str, Path]], None]:
    """A stand-in engine at `path` with the sidecar `segdeploy build` writes, then `edit` on the sidecar."""

    def make(path: Path, ctx: dict[str, Path]) -> None:
        from segdeploy.cuda.driver import GpuFacts
        from segdeploy.meta import ModelMeta
        from segdeploy.tensorrt.profiles import input_profile
        from segdeploy.tensorrt.sidecar import TensorFacts, engine_manifest, sidecar_path
        from segdeploy.tensorrt.versions import BuildPlan

        path.write_bytes(b"engine")
        meta = ModelMeta.from_dict(json.loads((ctx["exp"] / "manifest.json").read_text())["model"], "world")
        tensors = [
            TensorFacts("input", "input", "float32", [-1, 3, -1, -1]),
            TensorFacts("logits", "output", "float32", [-1, 3, -1, -1]),
        ]
        plan = BuildPlan("strongly-typed", "fp16", ("STRONGLY_TYPED",), (), False)
        gpu = GpuFacts("Orin", "8.7", 7620)
        raw = engine_manifest(
            meta, plan, "10.3.0.30", gpu, tensors, input_profile(meta, "input"), ctx["onnx"], path, {}
        )
        if edit is not None:
            edit(raw)
        sidecar_path(path).write_text(json.dumps(raw))

    return make


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    _rewrite(path, data[: len(data) // 2])


def _read_sidecar(ctx: dict[str, Path]) -> Any:
    from segdeploy.tensorrt.sidecar import read_engine_manifest

    return read_engine_manifest(ctx["tmp"] / "m.plan")


def _upper_digests(manifest: dict[str, Any]) -> None:
    for entry in manifest["artifacts"].values():
        entry["sha256"] = entry["sha256"].upper()


def _graph(head: str, argmax: bool = False) -> Callable[[Path, dict[str, Path]], None]:
    """A float32 NCHW graph with the shared model's segdeploy metadata (3 classes) but another head:
    "stride4" (logits at 1/4 resolution), "nhwc" (logits N,H,W,C), "two" (two outputs), "channels"
    (2 channels) or "logits" (full-resolution NCHW logits, with `argmax` claimed in the metadata)."""

    def make(path: Path, ctx: dict[str, Path]) -> None:
        import onnx
        from onnx import TensorProto, helper

        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, "height", "width"])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
        nodes = {
            "stride4": [helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[4, 4], strides=[4, 4])],
            "nhwc": [helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 3, 1])],
            "two": [helper.make_node("Identity", ["x"], ["y"]), helper.make_node("Identity", ["x"], ["z"])],
            "channels": [helper.make_node("Split", ["x"], ["y", "rest"], axis=1, num_outputs=2)],
            "logits": [helper.make_node("Identity", ["x"], ["y"])],
        }[head]
        outputs = [y, helper.make_tensor_value_info("z", TensorProto.FLOAT, None)] if head == "two" else [y]
        graph = helper.make_graph(nodes, "g", [x], outputs)
        model = onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
        source = onnx.load(str(ctx["onnx"]))
        for prop in source.metadata_props:
            meta = json.loads(prop.value) if prop.key == "segdeploy.meta" else None
            if meta is not None:
                meta["io"]["argmax"] = argmax
            model.metadata_props.add(key=prop.key, value=prop.value if meta is None else json.dumps(meta))
        onnx.save(model, str(path))

    return make


def _lightning(path: Path, ctx: dict[str, Path]) -> None:
    """The shared model's weights as a PyTorch Lightning checkpoint holds them: under 'model.'."""
    import torch

    state = torch.load(ctx["ckpt"], weights_only=True)["state_dict"]
    torch.save({"epoch": 3, "global_step": 30, "state_dict": {f"model.{k}": v for k, v in state.items()}}, path)


def _legacy(path: Path, ctx: dict[str, Path]) -> None:
    """The shared segdeploy checkpoint in torch.save's legacy (pre-1.6, non-zip) format."""
    import torch

    torch.save(torch.load(ctx["ckpt"], weights_only=True), path, _use_new_zipfile_serialization=False)


def _stray_world(**env: str) -> Callable[[dict[str, Path]], Any]:
    """Join a world of two with launcher variables `env` set and no second process (issue 24, kind 6)."""

    def call(ctx: dict[str, Path]) -> Any:
        import socket

        from segdeploy.train.distributed import joined

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = str(probe.getsockname()[1])
        variables = {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, **env}
        variables["SEGDEPLOY_RENDEZVOUS_TIMEOUT"] = variables.get("SEGDEPLOY_RENDEZVOUS_TIMEOUT", "1")
        saved = {name: os.environ.get(name) for name in variables}
        os.environ.update(variables)
        try:
            with joined("cpu"):
                pass
        finally:
            for name, value in saved.items():
                os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)

    return call


def _trained_run(path: Path, ctx: dict[str, Path]) -> None:
    """A one-epoch run of the shared tiny recipe: best.pt, last.pt, history.json."""
    from segdeploy.data.spec import load_dataset_spec
    from segdeploy.recipes import load_recipe
    from segdeploy.train.loop import train

    recipe = load_recipe(str(ctx["recipe"]))
    recipe = recipe.replace(train=replace(recipe.train, epochs=1))
    train(recipe, load_dataset_spec(ctx["data"]), path, show_progress=False, log=lambda _: None)


_HELD: list[int] = []  # descriptors of the locks rows hold for the whole session, as a live writer would


def _held_lock(path: Path, ctx: dict[str, Path]) -> None:
    """The writer's lock beside an output (`.NAME.lock`), held by a live process: this one."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, b"4242")
    _HELD.append(fd)


def _killed_staging(path: Path, ctx: dict[str, Path]) -> None:
    """The staging folder a SIGKILLed export left: half its files, no lock."""
    path.mkdir(parents=True)
    shutil.copyfile(ctx["onnx"], path / "model.onnx")


def _killed_swap(path: Path, ctx: dict[str, Path]) -> None:
    """A calibration set a run killed mid-swap left in its `.old-` folder, the target itself gone."""
    _calibration_copy(path / "c", ctx)


def _recipe_plus(text: str) -> Callable[[Path, dict[str, Path]], None]:
    def make(path: Path, ctx: dict[str, Path]) -> None:
        path.write_text(ctx["recipe"].read_text() + text)

    return make


def _onnx_named(path: Path, ctx: dict[str, Path]) -> None:
    shutil.copyfile(ctx["onnx"], path)


def _dangling(path: Path, ctx: dict[str, Path]) -> None:
    path.symlink_to(path.parent / "nowhere" / "out")


def _disk_full(target: str, call: Callable[[dict[str, Path]], Any]) -> Callable[[dict[str, Path]], Any]:
    """`call` with every write through `target` (module.function) failing as on a full disk."""

    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    def run(ctx: dict[str, Path]) -> Any:
        from unittest import mock

        with mock.patch(target, fail):
            return call(ctx)

    return run


def _write_json_deep(ctx: dict[str, Path]) -> Any:
    from segdeploy.files import write_json

    return write_json(ctx["tmp"] / "new" / "deeper" / "r.json", {"a": 1})


def _train_api(ctx: dict[str, Path]) -> Any:
    from segdeploy.train.options import train_recipe

    return train_recipe(str(ctx["recipe"]), ctx["data"], ctx["tmp"] / "runs" / "r", log=lambda _: None)


def _offline_pretrained(ctx: dict[str, Path]) -> Any:
    """Build with --pretrained where the hub cannot be reached and its cache is empty (kind 10)."""
    from unittest import mock

    import huggingface_hub.constants as hub

    from segdeploy.models import registry

    with (
        mock.patch.object(registry, "HUB", ("127.0.0.1", 9)),
        mock.patch.object(hub, "HF_HUB_CACHE", str(ctx["tmp"] / "hf")),
    ):
        return registry.build_model("unet", "resnet18", 3, pretrained=True)


def _race_export(ctx: dict[str, Path]) -> Any:
    """An export into {tmp}/e that another export finishes after this one's 'already exists' check and
    before it takes the writer's lock (kind 5): the order a slower second run sees, simulated."""
    from unittest import mock

    from segdeploy.export import pipeline

    real = pipeline.check_precision_inputs

    def first_finishes_meanwhile(*args: Any) -> Any:
        with mock.patch.object(pipeline, "check_precision_inputs", real):
            _export_api()(ctx)
        return real(*args)

    with mock.patch.object(pipeline, "check_precision_inputs", first_finishes_meanwhile):
        return _export_api()(ctx)


def _link_to(name: str) -> Callable[[Path, dict[str, Path]], None]:
    """A symbolic link to {tmp}/`name` (made before it when `files` lists that first)."""

    def make(path: Path, ctx: dict[str, Path]) -> None:
        path.symlink_to(ctx["tmp"] / name)

    return make


def _no_access(maker: Callable[[Path, dict[str, Path]], None]) -> Callable[[Path, dict[str, Path]], None]:
    """What `maker` makes, then its permissions taken away (chmod 000)."""

    def make(path: Path, ctx: dict[str, Path]) -> None:
        maker(path, ctx)
        path.chmod(0)

    return make


def _calibration_moved(when_made: str | None) -> Callable[[Path, dict[str, Path]], None]:
    """A copy of the shared calibration set moved away from its data set, its manifest recording
    {tmp}/`when_made` as the data set's place when made (None: an older manifest without that field)."""

    def make(path: Path, ctx: dict[str, Path]) -> None:
        _calibration_copy(path, ctx)
        manifest = json.loads((path / "manifest.json").read_text())
        _set("dataset_when_made", None if when_made is None else str(ctx["tmp"] / when_made))(manifest)
        (path / "manifest.json").write_text(json.dumps(manifest))

    return make


def _load_calibration(ctx: dict[str, Path]) -> Any:
    from segdeploy.data.calibration import load_calibration_set

    return load_calibration_set(ctx["tmp"] / "far" / "c")


def _read_only_mount(call: Callable[[dict[str, Path]], Any]) -> Callable[[dict[str, Path]], Any]:
    """`call` with every new file failing as on a read-only mount (tempfile.mkstemp: the probe's and
    every atomic write's way in)."""

    def fail(*args: Any, **kwargs: Any) -> None:
        raise OSError(30, "Read-only file system")

    def run(ctx: dict[str, Path]) -> Any:
        from unittest import mock

        with mock.patch("tempfile.mkstemp", fail):
            return call(ctx)

    return run


def _parity_maps(ctx: dict[str, Path]) -> Any:
    from segdeploy.data.spec import load_dataset_spec
    from segdeploy.parity import ParityOptions
    from segdeploy.stored_parity import check_parity

    spec = load_dataset_spec(ctx["data"])
    return check_parity(
        ctx["exp"], spec, reference="pytorch", options=ParityOptions(save_disagreement=ctx["tmp"] / "maps")
    )


def _report_api(ctx: dict[str, Path]) -> Any:
    from segdeploy.look.report import make_report

    return make_report(ctx["exp"], ctx["exp"] / "report.html", log=lambda _: None)


def _read_only_folder(path: Path, ctx: dict[str, Path]) -> None:
    """A folder without write permission (root writes into it all the same: such rows skip as root)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o555)


def _sidecar_row(name: str, fragment: str, edit: Callable[[dict[str, Any]], None]) -> Case:
    return Case(name, "py:sidecar_read", fragment, files={"m.plan": _sidecar(edit)})


_PARITY_X = "parity {tmp}/x --data {data}"
_PREDICT_M = "predict {tmp}/m.onnx {img} --out {tmp}/p"
_MODEL_ONNX = "artifacts/model.onnx"

PY_CASES.update(
    {
        "sidecar_read": _read_sidecar,
        "runtime_x": _segment(np.zeros((64, 96, 3), np.uint8), "tampered"),
        "disk_full_json": _disk_full("pathlib.Path.write_text", _write_json_deep),
        "disk_full_export": _disk_full("torch.save", _export_api()),
        "disk_full_train": _disk_full("torch.save", _train_api),
        "offline_pretrained": _offline_pretrained,
        "race_export": _race_export,
        "load_calibration": _load_calibration,
        "read_only_parity_maps": _read_only_mount(_parity_maps),
        "read_only_report": _read_only_mount(_report_api),
        "stray_rank_0": _stray_world(RANK="0"),
        "stray_rank_1": _stray_world(RANK="1"),
        "stray_no_port": _stray_world(RANK="0", MASTER_PORT="70000"),
        "stray_timeout_text": _stray_world(RANK="0", SEGDEPLOY_RENDEZVOUS_TIMEOUT="soon"),
        "runtime_stride4": lambda ctx: _segment(np.zeros((64, 96, 3), np.uint8))({"onnx": ctx["tmp"] / "g.onnx"}),
    }
)

CASES += [
    # kind 2: manifest.json, the ONNX metadata and the engine sidecar, read through their schemas
    Case(
        "manifest missing key",
        _PARITY_X,
        "manifest.json: field artifacts: Field required",
        files=_manifest_set("artifacts", None),
    ),
    Case(
        "manifest missing entry key",
        _PARITY_X,
        "field artifacts.'model.onnx'.sha256: Field required",
        files=_manifest_set(_MODEL_ONNX + "/sha256", None),
    ),
    Case(
        "manifest wrong type",
        _PARITY_X,
        "field artifacts.'model.onnx'.bytes: Input should be a valid integer",
        files=_manifest_set(_MODEL_ONNX + "/bytes", "4 kB"),
    ),
    Case(
        "manifest negative size",
        _PARITY_X,
        "field artifacts.'model.onnx'.bytes",
        files=_manifest_set(_MODEL_ONNX + "/bytes", -1),
    ),
    Case(
        "manifest digest not hex",
        _PARITY_X,
        "field artifacts.'model.onnx'.sha256: String should match",
        files=_manifest_set(_MODEL_ONNX + "/sha256", "abc"),
    ),
    Case(
        "manifest truncated",
        _PARITY_X,
        "manifest.json: not readable JSON",
        files={"x": _export_copy(lambda f: _truncate(f / "manifest.json"))},
    ),
    Case(
        "manifest colours as names",
        _PARITY_X,
        "field model.colors[0]: Input should be a valid list, got 'black'",
        files=_manifest_set("model/colors", ["black", "red", "green"]),
    ),
    Case(
        "manifest colour 256",
        _PARITY_X,
        "field model.colors[1][0]",
        files=_manifest_set("model/colors", [[0, 0, 0], [256, 0, 0], [0, 1, 0]]),
    ),
    Case(
        "manifest colours too few",
        _PARITY_X,
        "field model.colors: 2 colours for 3 classes",
        files=_manifest_set("model/colors", [[0, 0, 0], [1, 0, 0]]),
    ),
    Case(
        "manifest entry a string",
        _PARITY_X,
        "field artifacts.'model.onnx': Input should be a valid dictionary",
        files=_manifest_set(_MODEL_ONNX, "model.onnx"),
    ),
    Case(
        "manifest artifacts a list",
        _PARITY_X,
        "field artifacts: Input should be a valid dictionary",
        files=_manifest_set("artifacts", ["model.onnx"]),
    ),
    Case(
        "manifest recipe broken",
        _PARITY_X,
        "field model.recipe: input_size: expected 2 values",
        files=_manifest_set("model/recipe/input_size", [64]),
    ),
    Case(
        "manifest io text",
        _PARITY_X,
        "field model.io.argmax: Input should be a valid boolean",
        files=_manifest_set("model/io/argmax", "no"),
    ),
    Case(
        "manifest newer version",
        _PARITY_X,
        "this segdeploy reads 'segdeploy.manifest/1'",
        files=_manifest_set("format", "segdeploy.manifest/2"),
    ),
    Case(
        "manifest top-level list",
        _PARITY_X,
        "not a segdeploy manifest",
        files={"x": _export_copy(lambda f: _rewrite(f / "manifest.json", b"[]"))},
    ),
    Case(
        "report manifest missing model",
        "report {tmp}/x --out {tmp}/r.html",
        "field model: Field required",
        files=_manifest_set("model", None),
    ),
    Case(
        "bench manifest entry a string",
        "bench {tmp}/x/model.onnx --iterations 1 --no-memory",
        "field artifacts.'model.pt'",
        files=_manifest_set("artifacts/model.pt", "model.pt"),
    ),
    Case(
        "runtime manifest wrong type",
        "py:runtime_x",
        "field artifacts.'model.onnx'.kind: Input should be a valid string",
        files=_manifest_set(_MODEL_ONNX + "/kind", 3),
    ),
    Case(
        "manifest upper-case digests",
        "predict {tmp}/x/model.onnx {img} --out {tmp}/p",
        "wrote 1 masks",
        0,
        files={"x": _export_copy(_manifest_edit(_upper_digests))},
        writes=("p",),
    ),
    Case(
        "onnx metadata truncated",
        _PREDICT_M,
        "(metadata 'segdeploy.meta'): not readable JSON",
        files={"m.onnx": _onnx_props(**{"segdeploy.meta": '{"recipe": {"na'})},
    ),
    Case(
        "onnx metadata colours as names",
        _PREDICT_M,
        "(metadata 'segdeploy.meta'): field colors[2]: Input should be a valid list",
        files={"m.onnx": _onnx_meta("colors/2", "green")},
    ),
    Case(
        "onnx metadata missing classes",
        _PREDICT_M,
        "field class_names: Field required",
        files={"m.onnx": _onnx_meta("class_names", None)},
    ),
    Case(
        "onnx metadata wrong type",
        _PREDICT_M,
        "field class_names[1]: Input should be a valid string",
        files={"m.onnx": _onnx_meta("class_names/1", 7)},
    ),
    Case(
        "onnx metadata a string",
        _PREDICT_M,
        "field top level: Input should be a valid dictionary",
        files={"m.onnx": _onnx_props(**{"segdeploy.meta": '"unet"'})},
    ),
    Case(
        "onnx metadata unknown key",
        _PREDICT_M,
        "field colours: Extra inputs are not permitted",
        files={"m.onnx": _onnx_meta("colours", [])},
    ),
    Case(
        "onnx metadata precision",
        _PREDICT_M,
        "(metadata 'segdeploy.precision'): unknown precision 'fp8'",
        files={"m.onnx": _onnx_props(**{"segdeploy.precision": "fp8"})},
    ),
    Case(
        "onnx metadata newer version",
        _PREDICT_M,
        "metadata format 'segdeploy.onnx-meta/2'",
        files={"m.onnx": _onnx_props(**{"segdeploy.format": "segdeploy.onnx-meta/2"})},
    ),
    Case(
        "sidecar truncated",
        "py:sidecar_read",
        "m.plan.json: not readable JSON",
        files={"m.plan": _sidecar(), "trunc": lambda p, c: _truncate(c["tmp"] / "m.plan.json")},
    ),
    _sidecar_row(
        "sidecar missing key", "m.plan.json: field engine_sha256: Field required", _set("engine_sha256", None)
    ),
    _sidecar_row(
        "sidecar wrong type", "field gpu.memory_mb: Input should be a valid integer", _set("gpu/memory_mb", "8 GB")
    ),
    _sidecar_row(
        "sidecar tensor a string", "field tensors[0]: Input should be a valid dictionary", _set("tensors/0", "input")
    ),
    _sidecar_row(
        "sidecar two outputs",
        "field tensors: expected one input and one output",
        lambda r: r["tensors"].__setitem__(0, {**r["tensors"][1]}),
    ),
    _sidecar_row(
        "sidecar colours as names",
        "field model.colors[0]: Input should be a valid list",
        _set("model/colors/0", "black"),
    ),
    _sidecar_row(
        "sidecar newer version", "this segdeploy reads 'segdeploy.engine/1'", _set("format", "segdeploy.engine/2")
    ),
    # kind 3: graphs that are not what their metadata claims, refused at open or at the first run
    Case(
        "graph stride-4 logits",
        "predict {tmp}/g.onnx {img} --out {tmp}/p",
        "output of shape (1, 3, 16, 24) for a 1x64x96 input; expected float32 logits (N, 3, H, W)",
        files={"g.onnx": _graph("stride4")},
    ),
    Case(
        "graph NHWC logits",
        "predict {tmp}/g.onnx {img} --out {tmp}/p",
        "output of shape (?, ?, ?, 3) (NHWC logits)",
        files={"g.onnx": _graph("nhwc")},
    ),
    Case(
        "graph two outputs",
        "predict {tmp}/g.onnx {img} --out {tmp}/p",
        "the graph has 2 outputs; segdeploy models have one",
        files={"g.onnx": _graph("two")},
    ),
    Case(
        "graph two channels",
        "bench {tmp}/g.onnx --no-memory",
        "(2 channels); expected float32 logits (N, 3, H, W)",
        files={"g.onnx": _graph("channels")},
    ),
    Case(
        "graph logits claiming argmax",
        "predict {tmp}/g.onnx {img} --out {tmp}/p",
        "expected an int32 class map (N, H, W)",
        files={"g.onnx": _graph("logits", argmax=True)},
    ),
    Case(
        "runtime stride-4 logits",
        "py:runtime_stride4",
        "output of shape (1, 3, 16, 24)",
        files={"g.onnx": _graph("stride4")},
    ),
    Case(
        "parity stride-4 logits",
        "compare {tmp}/g.onnx --data {data} --figure {tmp}/c.png",
        "at the input's resolution",
        files={"g.onnx": _graph("stride4")},
    ),
    # kind 4: checkpoint and recipe that disagree; checkpoints in other shapes
    Case(
        "export recipe of another architecture",
        "export unet --checkpoint {ckpt} --out {tmp}/e",
        "the checkpoint holds architecture 'tests.fixtures.user_models:tiny', recipe 'unet' says 'unet'",
    ),
    Case(
        "export --model of another architecture",
        "export --model tests.fixtures.user_models:three_layer --checkpoint {ckpt} --out {tmp}/e",
        "recipe 'tests.fixtures.user_models:three_layer' says",
    ),
    Case(
        "export recipe of other classes",
        "export {bad_recipe} --checkpoint {ckpt} --out {tmp}/e",
        "the checkpoint holds num_classes 3, recipe 'tiny' says 5",
        recipe={"num_classes": 5},
    ),
    Case(
        "export recipe's sizes with a checkpoint",
        "export {bad_recipe} --checkpoint {ckpt} --out {tmp}/e",
        "validated 1x32x64",
        0,
        recipe={"export": {"opset": 13, "probe_sizes": [[32, 64], [64, 64]]}},
        writes=("e",),
    ),
    Case(
        "export legacy torch.save checkpoint",
        "export --checkpoint {tmp}/l.pt --out {tmp}/e",
        "model.onnx",
        0,
        files={"l.pt": _legacy},
        writes=("e",),
    ),
    Case(
        "export Lightning state dict",
        "export {recipe} --checkpoint {tmp}/l.ckpt --out {tmp}/e",
        "every key starts with 'model.'",
        files={"l.ckpt": _lightning},
    ),
    Case(
        "bench plain state dict",
        "bench {tmp}/s.pt --iterations 1 --no-memory",
        "make a segdeploy checkpoint of it with 'segdeploy export RECIPE --checkpoint",
        files={"s.pt": _plain_state_dict},
    ),
    Case(
        "predict plain state dict",
        "predict {tmp}/s.pt {img} --out {tmp}/p",
        "without the recipe it was trained with",
        files={"s.pt": _plain_state_dict},
    ),
    # kind 6: stray launcher variables (a world of two, no second process)
    Case("stray WORLD_SIZE=2 RANK=0", "py:stray_rank_0", "RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT="),
    Case("stray WORLD_SIZE=2 RANK=1", "py:stray_rank_1", "nothing listens at 127.0.0.1"),
    Case("stray MASTER_PORT out of range", "py:stray_no_port", "MASTER_ADDR and MASTER_PORT must name"),
    Case("stray rendezvous timeout text", "py:stray_timeout_text", "SEGDEPLOY_RENDEZVOUS_TIMEOUT='soon'"),
    # kind 7: training numerics
    Case(
        "train --class-weights all zero",
        _TRAIN + " --class-weights 0,0,0",
        "--class-weights '0,0,0': need finite values",
    ),
    Case("train --class-weights negative", _TRAIN + " --class-weights 1,-1,1", "at least one above 0"),
    Case("train --class-weights nan", _TRAIN + " --class-weights nan,1,1", "need finite values >= 0"),
    Case(
        "recipe class weights all zero",
        "export {bad_recipe} --out {tmp}/e",
        "train.class_weights [0.0, 0.0, 0.0]",
        recipe={"train": {"class_weights": [0, 0, 0]}},
    ),
    Case(
        "train NaN loss",
        "train {bad_recipe} --data {data} --out {tmp}/run",
        "epoch 1 step 1: the loss is nan (NaN or infinite): training stopped, no checkpoint was written",
        recipe={"architecture": "tests.fixtures.user_models:diverging"},
    ),
    Case(
        "train batch 1 with image pooling",
        "train {bad_recipe} --data {data} --out {tmp}/run --batch 1",
        "batch of 1 per process: tests.fixtures.user_models:pooled_branch has a BatchNorm layer over a 1x1 map",
        recipe={"architecture": "tests.fixtures.user_models:pooled_branch"},
    ),
    Case(
        "train --resume with fewer epochs",
        "train {recipe} --data {data} --resume {tmp}/run/last.pt --epochs 1",
        "already trained 1 epochs; --epochs 1 leaves none to run (pass more than 1)",
        files={"run": _trained_run},
    ),
    # kind 5: concurrent and killed runs into the same place
    Case(
        "export while another export writes",
        "export {recipe} --out {tmp}/e",
        "pid 4242 is writing it now",
        files={".e.lock": _held_lock},
    ),
    Case(
        "calibrate while another writes",
        "calibrate --data {data} --num 8 --out {tmp}/c",
        "{tmp}/c: pid 4242 is writing it now".replace("{tmp}/", ""),
        files={".c.lock": _held_lock},
    ),
    Case("predict while another writes", _PREDICT, "p: pid 4242 is writing it now", files={".p.lock": _held_lock}),
    Case("train while another writes", _TRAIN, "run: pid 4242 is writing it now", files={".run.lock": _held_lock}),
    Case(
        "export after a killed export",
        "export {recipe} --out {tmp}/e",
        "left by a run that was killed",
        0,
        files={".e.staging-k1ll3d": _killed_staging},
        writes=("e", ".e.staging-k1ll3d"),
    ),
    Case(
        "calibrate after a run killed mid-swap",
        "calibrate --data {data} --num 8 --out {tmp}/c --force",
        "put back",
        0,
        files={".c.old-k1ll3d": _killed_swap},
        writes=("c", ".c.old-k1ll3d"),
    ),
    # kind 8: data and recipe files
    Case(
        "recipe lr 1e-3 (YAML 1.1 text)",
        "export {bad_recipe} --out {tmp}/e",
        "validated",
        0,
        recipe={"train": {"lr": "1e-3"}},
        writes=("e",),
    ),
    Case(
        "recipe duplicate key",
        "export {tmp}/r.yaml --out {tmp}/e",
        "duplicate key 'name'",
        files={"r.yaml": _recipe_plus("name: again\n")},
    ),
    Case(
        "data duplicate key",
        "calibrate --data {tmp}/d.yaml --num 8 --out {tmp}/cal",
        "duplicate key 'root' (line 2)",
        files={"d.yaml": "root: .\nroot: ..\n"},
    ),
    Case(
        "calibrate --name ../x", "calibrate --data {data} --num 8 --name ../x", "--name '../x': a set name, not a path"
    ),
    Case("calibrate --name a/b", "calibrate --data {data} --num 8 --name a/b", "a set name, not a path"),
    # kind 9: suffixes in any case
    Case(
        "bench upper-case .ONNX",
        "bench {tmp}/M.ONNX --iterations 2 --warmup 0 --no-memory",
        "M.ONNX",
        0,
        files={"M.ONNX": _onnx_named},
    ),
    # kind 1: the disk (full disks by fault injection: the runner is root here, so no read-only rows)
    Case(
        "predict --out dangling symlink",
        "predict {onnx} {img} --out {tmp}/d",
        "a dangling symbolic link",
        files={"d": _dangling},
    ),
    Case(
        "export --out dangling symlink",
        "export {recipe} --out {tmp}/d",
        "a dangling symbolic link",
        files={"d": _dangling},
    ),
    Case(
        "predict masks/ is a file",
        "predict {onnx} {img} --out {tmp}/p",
        "masks: exists and is not a folder",
        files={"p/masks": b"x"},
    ),
    Case("disk full writing JSON", "py:disk_full_json", "r.json: cannot write it: No space left on device"),
    Case("disk full during export", "py:disk_full_export", "e/model.pt: cannot write it: No space left on device"),
    Case(
        "disk full at the first checkpoint", "py:disk_full_train", "r/best.pt: cannot write it: No space left on device"
    ),
    Case(
        "bench two model.onnx",
        "bench {onnx} {tmp}/b/model.onnx --iterations 2 --warmup 0 --no-memory",
        "b/model.onnx",
        0,
        files={"b/model.onnx": _onnx_named},
    ),
    # kind 10: offline
    Case("--pretrained offline", "py:offline_pretrained", "--pretrained: could not fetch ImageNet weights for 'unet'"),
    # kind 5, second pass: a race past the "already exists" check; --force through a symbolic link
    Case("export finished by another meanwhile", "py:race_export", "e/model.onnx: already exists", writes=("e",)),
    Case(
        "export --force through a symlinked --out",
        "export {recipe} --out {tmp}/e --force",
        "validated",
        0,
        files={"disk/e": _export_copy(), "e": _link_to("disk/e")},
        writes=("disk/e",),
    ),
    Case(
        "predict through a symlinked --out",
        "predict {onnx} {img} --out {tmp}/p",
        "masks",
        0,
        files={"disk/p/notes.txt": "mine", "p": _link_to("disk/p")},
        writes=("disk/p/masks",),
    ),
    # kind 9, second pass: what predict meets in a folder
    Case(
        "predict folder with a sub-folder",
        "predict {onnx} {tmp}/in --out {tmp}/p",
        "in/sub: a folder (predict reads the files directly inside",
        0,
        files={"in/a.png": _image, "in/sub/b.png": _image},
        writes=("p",),
    ),
    Case(
        "predict folder with a sub-folder named x.png",
        "predict {onnx} {tmp}/in --out {tmp}/p",
        "in/x.png: a folder",
        0,
        files={"in/a.png": _image, "in/x.png/b.png": _image},
        writes=("p",),
    ),
    Case(
        "predict folder with a macOS ._ file",
        "predict {onnx} {tmp}/in --out {tmp}/p",
        "in/._a.png: a hidden file",
        0,
        files={"in/a.png": _image, "in/._a.png": b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X"},
        writes=("p",),
    ),
    Case(
        "predict unreadable file in a folder",
        "predict {onnx} {tmp}/in --out {tmp}/p",
        "in/b.png: unreadable image ([Errno 13] Permission denied",
        files={"in/a.png": _image, "in/b.png": _no_access(_image)},
        permissions=True,
    ),
    Case(
        "predict folder of sub-folders only",
        "predict {onnx} {tmp}/in --out {tmp}/p",
        "in: folder holds no images or videos",
        files={"in/sub/b.png": _image},
    ),
    # kind 8, second pass: train/val overlap; a calibration set moved away from its data set
    Case(
        "data train/val overlap",
        "calibrate --data {bad_data} --num 8 --out {tmp}/c",
        "train and val share 2 ids (000, 001): validation scores on them measure memory",
        0,
        data={"splits": {"train": [f"{i:03d}" for i in range(8)], "val": ["000", "001", "008"]}},
        writes=("c",),
    ),
    Case(
        "calibration set moved, data set gone",
        "py:load_calibration",
        "its data set YAML is not found; looked at",
        files={"far/c": _calibration_moved("gone/data.yaml")},
    ),
    Case(
        "older calibration set moved",
        "py:load_calibration",
        "(the recorded '../",
        files={"far/c": _calibration_moved(None)},
    ),
    # kind 1, second pass: parity's --save-disagreement and report's folder, probed before the work
    Case(
        "parity --save-disagreement is a file",
        "parity {exp} --data {data} --reference pytorch --save-disagreement {tmp}/f",
        "f: exists and is not a folder",
        files={"f": b"x"},
    ),
    Case(
        "parity --save-disagreement on a read-only mount",
        "py:read_only_parity_maps",
        "maps: cannot write it: Read-only file system",
    ),
    Case("report on a read-only mount", "py:read_only_report", "exp: cannot write it: Read-only file system"),
    Case(
        "parity --save-disagreement without permission",
        "parity {exp} --data {data} --reference pytorch --save-disagreement {tmp}/ro/maps",
        "ro/maps: cannot write it: Permission denied",
        files={"ro": _read_only_folder},
        permissions=True,
    ),
    Case(
        "report into an export folder without permission",
        "report {tmp}/x",
        "x: cannot write it: Permission denied",
        files={"x": _export_copy(lambda folder: folder.chmod(0o555))},
        permissions=True,
    ),
]
