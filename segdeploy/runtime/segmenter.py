"""`Segmenter`: frames in, class maps out, for any engine or ONNX model segdeploy wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..backends import open_backend, row_for
from ..backends.base import Backend
from ..errors import SegdeployError
from ..meta import colorize
from .resize import resize_frames, resize_labels, resize_logits


def segment_frames(
    backend: Backend, frames: np.ndarray, size: tuple[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """int32 class maps (N, H, W) of uint8 RGB frames at their own resolution, and the float32 logits
    (None when the model ends in an argmax): resized to the working `size` (height, width) when given,
    padded to a multiple of 32, run, cropped, and resized back."""
    height, width = int(frames.shape[1]), int(frames.shape[2])
    work = frames if size is None or size == (height, width) else resize_frames(frames, size)
    work_h, work_w = int(work.shape[1]), int(work.shape[2])
    padded = np.pad(work, ((0, 0), (0, -work_h % 32), (0, -work_w % 32), (0, 0)))
    output = backend.run(padded)
    scores = output[..., :work_h, :work_w] if output.ndim == 4 else None
    classes = (scores.argmax(1) if scores is not None else output[:, :work_h, :work_w]).astype(np.int32)
    if (work_h, work_w) != (height, width):
        classes = resize_labels(classes, (height, width))
        scores = None if scores is None else resize_logits(scores, (height, width))
    return classes, scores


class Segmenter:
    """Loads an engine (.plan, TensorRT) or an ONNX model (ONNX Runtime) with its facts: classes, colours,
    preprocessing, the sizes it takes. A frame of a size the model cannot take (outside its profile, or
    not a multiple of 32) is resized to the recipe's input size and the result resized back."""

    def __init__(self, path: str | Path, device: int = 0, cuda_graph: bool = False, threads: int = 0) -> None:
        path = Path(path)
        if "runtime" not in row_for(path).capabilities:
            raise SegdeployError(f"{path}: the runtime runs engines and ONNX models, not PyTorch checkpoints")
        self.backend: Backend = open_backend(path, device=f"cuda:{device}", threads=threads, cuda_graph=cuda_graph)
        self.meta = self.backend.meta
        self.class_names, self.colors = self.meta.class_names, self.meta.colors

    def __call__(self, frames: np.ndarray, logits: bool = False) -> Any:
        """HxWx3 or NxHxWx3 uint8 RGB -> int32 class maps HxW or NxHxW; with `logits`, also the
        float32 logits (N)xCxHxW (None when the model ends in an argmax)."""
        frames = np.asarray(frames)
        single = frames.ndim == 3
        batch = frames[None] if single else frames
        if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[-1] != 3:
            raise SegdeployError(f"expected uint8 RGB frames HxWx3 or NxHxWx3, got {frames.dtype} {frames.shape}")
        exact = self._exact_shape()
        if exact is not None:
            classes, scores = self._segment_exact(batch, *exact)
        else:
            export = self.meta.recipe.export
            if len(batch) > export.batch[2]:
                raise SegdeployError(f"batch of {len(batch)} frames: the model takes at most {export.batch[2]}")
            size = (int(batch.shape[1]), int(batch.shape[2]))
            working = self.meta.recipe.input_size if export.shape_problems(len(batch), *size) else None
            classes, scores = segment_frames(self.backend, batch, working)
        if single:
            classes, scores = classes[0], None if scores is None else scores[0]
        return (classes, scores) if logits else classes

    def _exact_shape(self) -> tuple[int, tuple[int, int]] | None:
        """(batch, (height, width)) of an engine that takes one shape only (DLA), else None."""
        shapes: list[tuple[int, ...]] | None = getattr(self.backend, "accepted_shapes", None)
        if not shapes:
            return None
        shape = shapes[0]
        height, width = (shape[1], shape[2]) if self.meta.io.fold_preprocess else (shape[2], shape[3])
        return shape[0], (height, width)

    def _segment_exact(
        self, frames: np.ndarray, batch: int, size: tuple[int, int]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Frames resized to the engine's one size and run `batch` at a time, the last chunk padded."""
        classes: list[np.ndarray] = []
        scores: list[np.ndarray | None] = []
        for start in range(0, len(frames), batch):
            chunk = frames[start : start + batch]
            count = len(chunk)
            padded = np.concatenate([chunk, np.repeat(chunk[-1:], batch - count, axis=0)]) if count < batch else chunk
            chunk_classes, chunk_scores = segment_frames(self.backend, padded, size)
            classes.append(chunk_classes[:count])
            scores.append(None if chunk_scores is None else chunk_scores[:count])
        kept = [s for s in scores if s is not None]
        return np.concatenate(classes), (np.concatenate(kept) if len(kept) == len(scores) else None)

    def close(self) -> None:
        """Release the backend (GPU memory, TensorRT objects, the CUDA context). Idempotent."""
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Segmenter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def colorize(self, classes: np.ndarray) -> np.ndarray:
        """A class map as RGB colours from the model's palette."""
        return colorize(classes, self.colors)
