"""`Segmenter`: frames in, class maps out, for any engine or ONNX model segdeploy wrote."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from ..backends import open_backend, row_for
from ..backends.base import Backend
from ..backends.table import backend_choice
from ..errors import SegdeployError
from ..meta import STRIDE, AcceptedShapes, colorize
from .frames import as_rgb_batch, channel_order
from .resize import resize_frames, resize_labels, resize_logits
from .tiling import ArrayReader, ArrayWriter, BandWriter, TileReader, plan_tiling, segment_tiled


def segment_frames(
    backend: Backend, frames: np.ndarray, size: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """int32 class maps (N, H, W) of uint8 RGB frames at their own resolution, and the float32 logits
    (None when the model ends in an argmax): resized to the working `size` (height, width) when given,
    padded to a multiple of STRIDE, run, cropped, and resized back."""
    height, width = int(frames.shape[1]), int(frames.shape[2])
    work = frames if size is None or size == (height, width) else resize_frames(frames, size)
    work_h, work_w = int(work.shape[1]), int(work.shape[2])
    padded = np.pad(work, ((0, 0), (0, -work_h % STRIDE), (0, -work_w % STRIDE), (0, 0)))
    output = backend.run(padded)
    scores = output[..., :work_h, :work_w] if output.ndim == 4 else None
    classes = (scores.argmax(1) if scores is not None else output[:, :work_h, :work_w]).astype(np.int32)
    if (work_h, work_w) != (height, width):
        classes = resize_labels(classes, (height, width))
        scores = None if scores is None else resize_logits(scores, (height, width))
    return classes, scores


class Segmenter:
    """Loads an engine (.plan, TensorRT) or an ONNX model (ONNX Runtime; OpenVINO on the CPU with
    `backend="openvino"` or "openvino:bf16") with its facts: classes, colours, preprocessing, the sizes
    it takes. A frame of a size the model cannot take (outside its accepted shapes, or not a multiple of
    STRIDE) is resized to the recipe's input size (to its one size, for an engine built for one shape:
    DLA) and the result resized back; a model of one batch size runs that many frames at a time.
    `channels`: the order of the frames' channels, 'rgb' (Pillow, most cameras) or 'bgr' (OpenCV's
    imread and VideoCapture). Close it when done (or use `with`)."""

    def __init__(
        self,
        path: str | Path,
        device: int = 0,
        cuda_graph: bool = False,
        threads: int = 0,
        channels: str = "rgb",
        backend: str | None = None,
    ) -> None:
        path = Path(path)
        self.channels = channel_order(channels)
        if "runtime" not in row_for(path).capabilities:
            raise SegdeployError(f"{path}: the runtime runs engines and ONNX models, not PyTorch checkpoints")
        chosen = backend_choice(backend) if backend else {}
        self.backend: Backend = open_backend(
            path, device=f"cuda:{device}", threads=threads, cuda_graph=cuda_graph, **chosen
        )
        self.meta = self.backend.meta
        self.class_names, self.colors = self.meta.class_names, self.meta.colors

    def __call__(self, frames: np.ndarray, logits: bool = False) -> Any:
        """HxWx3 or NxHxWx3 uint8 in the Segmenter's channel order -> int32 class maps HxW or NxHxW; with
        `logits`, also the float32 logits (N)xCxHxW (None when the model ends in an argmax)."""
        frames = np.asarray(frames)
        single = frames.ndim == 3
        batch = as_rgb_batch(frames, self.channels)
        accepted = self.backend.accepted_shapes()
        fixed = accepted.batch[0] == accepted.batch[1]
        if not fixed and not accepted.batch[0] <= len(batch) <= accepted.batch[1]:
            raise SegdeployError(
                f"batch of {len(batch)} frames: the model takes {accepted.batch[0]} to {accepted.batch[1]}"
            )
        classes, scores = self._in_chunks(batch, accepted) if fixed else self._segment(batch, accepted)
        if single:
            classes, scores = classes[0], None if scores is None else scores[0]
        return (classes, scores) if logits else classes

    def _segment(self, frames: np.ndarray, accepted: AcceptedShapes) -> tuple[np.ndarray, np.ndarray | None]:
        """Frames of a size the model does not take are resized: to its one size when it takes one size
        only (a DLA engine), else to the recipe's input size."""
        size = (int(frames.shape[1]), int(frames.shape[2]))
        working = None
        if accepted.problems(len(frames), *size):
            exact = accepted.height[0] == accepted.height[1] and accepted.width[0] == accepted.width[1]
            working = (accepted.height[0], accepted.width[0]) if exact else self.meta.recipe.input_size
        return segment_frames(self.backend, frames, working)

    def _in_chunks(self, frames: np.ndarray, accepted: AcceptedShapes) -> tuple[np.ndarray, np.ndarray | None]:
        """For a model of one batch size: that many frames at a time, the last chunk padded."""
        size = accepted.batch[0]
        classes: list[np.ndarray] = []
        scores: list[np.ndarray] = []
        for start in range(0, len(frames), size):
            chunk = frames[start : start + size]
            count = len(chunk)
            padded = np.concatenate([chunk, np.repeat(chunk[-1:], size - count, axis=0)]) if count < size else chunk
            chunk_classes, chunk_scores = self._segment(padded, accepted)
            classes.append(chunk_classes[:count])
            if chunk_scores is not None:
                scores.append(chunk_scores[:count])
        return np.concatenate(classes), (np.concatenate(scores) if scores else None)

    def segment_large(
        self,
        image: TileReader | np.ndarray,
        writer: BandWriter | None = None,
        tile: int | None = None,
        overlap: int | None = None,
    ) -> np.ndarray | None:
        """Tiled inference (runtime/tiling.py) of an image of any size at its own resolution: `image` a
        TileReader (segdeploy.geo.RasterReader reads GeoTIFFs by windows) or a uint8 RGB frame HxWx3.
        The class map goes to `writer` band by band and None is returned; without a writer it is
        returned, (H, W) uint8, with NODATA (255) where the reader had no data."""
        reader = ArrayReader(image) if isinstance(image, np.ndarray) else image
        tiling = plan_tiling([self.backend.accepted_shapes()], reader.shape, tile, overlap)
        if writer is not None:
            segment_tiled(self.backend, reader, writer, tiling)
            return None
        collected = ArrayWriter(*reader.shape)
        segment_tiled(self.backend, reader, collected, tiling)
        return collected.classes

    def colorize(self, classes: np.ndarray) -> np.ndarray:
        """A class map as RGB colours from the model's palette."""
        return colorize(classes, self.colors)

    def close(self) -> None:
        """Free the engine or ONNX Runtime session; idempotent."""
        self.backend.close()

    def __enter__(self) -> Segmenter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
