"""The torch-free runtime's own cost: `Segmenter(path, backend=...)` against a bare session of the same
library with the same settings, interleaved call by call on one uint8 frame, on a graph exported with
`--fold-preprocess --argmax` (so neither side normalises, pads or takes an argmax on the host).

    python benchmarks/runtime_overhead.py exports/unet-argmax/model.onnx --size 512x512 --iterations 30

Prints the median latency of each and the runtime's overhead in percent, per backend, after checking that
both return identical class maps.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from segdeploy.runtime import Segmenter


def bare_onnxruntime(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    session = ort.InferenceSession(str(path), options, ["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: batch})[0]


def bare_openvino(path: Path, threads: int) -> Any:
    import openvino as ov

    config: dict[str, Any] = {
        "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY",
        "CPU_DENORMALS_OPTIMIZATION": True,
    }
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    request = ov.Core().compile_model(str(path), "CPU", config).create_infer_request()

    def run(batch: np.ndarray) -> np.ndarray:
        request.infer({0: batch}, share_inputs=True)
        return np.array(request.get_output_tensor(0).data)

    return run


BARE = {"onnxruntime": bare_onnxruntime, "openvino": bare_openvino}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("onnx", type=Path, help="an ONNX model exported with --fold-preprocess --argmax")
    parser.add_argument("--size", default="512x512")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--backend", action="append", choices=sorted(BARE), help="repeatable [both]")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.split("x"))
    frame = np.random.default_rng(0).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    for backend in args.backend or sorted(BARE):
        bare = BARE[backend](args.onnx, args.threads)
        with Segmenter(args.onnx, threads=args.threads, backend=backend) as segment:
            assert segment.meta.io.fold_preprocess and segment.meta.io.argmax, "export with --fold-preprocess --argmax"
            ours, theirs = segment(frame), bare(frame[None])[0]
            identical = np.array_equal(ours, theirs)
            times: dict[str, list[float]] = {"runtime": [], "bare": []}
            for iteration in range(args.warmup + args.iterations):
                order = [("runtime", functools.partial(segment, frame)), ("bare", functools.partial(bare, frame[None]))]
                for name, call in order if iteration % 2 else order[::-1]:  # alternate who goes first
                    start = time.perf_counter()
                    call()
                    if iteration >= args.warmup:
                        times[name].append((time.perf_counter() - start) * 1000)
        runtime, plain = statistics.median(times["runtime"]), statistics.median(times["bare"])
        print(
            f"{backend} {args.size}: runtime {runtime:.2f} ms, bare session {plain:.2f} ms (medians of "
            f"{args.iterations}), overhead {100 * (runtime / plain - 1):+.1f}%, class maps identical: {identical}"
        )


if __name__ == "__main__":
    main()
