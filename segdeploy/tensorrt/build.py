"""`segdeploy build`: an ONNX graph in, a TensorRT engine and its sidecar manifest out.

Imports tensorrt and pycuda: call `require_tensorrt()` before importing this module. Paths that differ
between TensorRT versions are chosen in `versions.plan_build` and marked with the version here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
import tensorrt as trt

from ..artifacts.metadata import read_onnx_metadata
from ..data.calibration import check_compatible, load_calibration_set
from ..errors import SegdeployError
from ..files import refuse_overwrite, sha256_of, write_atomic, write_json
from ..meta import CHANNELS, ModelMeta
from .cuda import CudaContext
from .feeding import batch_count, calibration_batches
from .profiles import InputProfile, calibration_profile, input_profile
from .progress import PhaseTracker
from .sidecar import TensorFacts, engine_manifest, register_engine, sidecar_path
from .types import dims_list, numpy_dtype
from .versions import BuildPlan, TrtVersion, plan_build

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class BuildOptions:
    precision: str | None = None  # None: as the graph is typed; "fp16"/"int8": builder flags on an FP32 graph
    calibration: Path | None = None  # a calibration set folder, for "int8" with builder flags
    calib_batch: int = 8
    workspace_mb: int = 2048
    timing_cache: Path | None = None  # default: timing.cache beside the engine
    dla_core: int | None = None
    device: int = 0
    force: bool = False


@dataclass(frozen=True)
class BuildResult:
    engine: Path
    sidecar: Path
    plan: BuildPlan
    seconds: float
    timing_cache: Path
    calibration_cache: Path | None


class _Logger(trt.ILogger):
    """Keeps TensorRT's errors for the one-line message and passes its warnings on."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        trt.ILogger.__init__(self)
        self.echo = echo
        self.errors: list[str] = []

    def log(self, severity: trt.ILogger.Severity, msg: str) -> None:
        if severity in (trt.ILogger.Severity.INTERNAL_ERROR, trt.ILogger.Severity.ERROR):
            self.errors.append(msg)
        elif severity == trt.ILogger.Severity.WARNING:
            self.echo(f"TensorRT: {msg}")


def default_engine_path(onnx_path: Path, precision: str | None = None) -> Path:
    """model.fp16.onnx -> model.fp16.plan; builder flags on model.onnx -> model.flags-fp16.plan."""
    return onnx_path.with_suffix(f".flags-{precision}.plan" if precision else ".plan")


def calibration_cache_path(calibration: Path, onnx_path: Path) -> Path:
    """Under the calibration set, keyed by the graph: a cache holds per-tensor scales of one network."""
    return calibration / f"tensorrt-entropy2-{sha256_of(onnx_path)[:12]}.cache"


def _graph_facts(onnx_path: Path) -> tuple[ModelMeta, str]:
    try:
        model = onnx.load(str(onnx_path), load_external_data=False)
    except Exception as exc:
        raise SegdeployError(f"{onnx_path}: not a readable ONNX model ({str(exc).splitlines()[0]})") from None
    return read_onnx_metadata({p.key: p.value for p in model.metadata_props}, onnx_path)


def _dims(shape: tuple[int, ...]) -> trt.Dims:
    return trt.Dims(list(shape))


def _add_profile(builder: trt.Builder, profile: InputProfile) -> trt.IOptimizationProfile:
    trt_profile = builder.create_optimization_profile()
    trt_profile.set_shape(profile.name, _dims(profile.min), _dims(profile.opt), _dims(profile.max))
    return trt_profile


def _tensor(tensor: trt.ITensor, mode: str) -> TensorFacts:
    return TensorFacts(tensor.name, mode, numpy_dtype(tensor.dtype), dims_list(tensor.shape))


def _progress_monitor(tracker: PhaseTracker) -> Any:
    # trt.IProgressMonitor exists from TensorRT 10.0: the class is defined only when asked for.
    class Monitor(trt.IProgressMonitor):
        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name: str, parent_phase: str, num_steps: int) -> None:
            tracker.start(phase_name, parent_phase, num_steps)

        def step_complete(self, phase_name: str, step: int) -> bool:
            return tracker.step(phase_name, step)

        def phase_finish(self, phase_name: str) -> None:
            tracker.finish(phase_name)

    return Monitor()


def _use_timing_cache(config: trt.IBuilderConfig, path: Path, logger: _Logger) -> None:
    """Start from the cache file when TensorRT accepts it; otherwise from an empty cache."""
    try:
        cache = config.create_timing_cache(path.read_bytes() if path.is_file() else b"")
        accepted = cache is not None and config.set_timing_cache(cache, False)
    except (RuntimeError, TypeError):  # a file TensorRT cannot read at all
        accepted = False
    if not accepted:
        logger.echo(f"{path}: made by another GPU or TensorRT version; starting a fresh timing cache")
        config.set_timing_cache(config.create_timing_cache(b""), False)
        logger.errors.clear()  # the rejection is handled, not the reason a later build fails


def build_engine(
    onnx_path: Path,
    engine_path: Path | None = None,
    options: BuildOptions = BuildOptions(),
    log: Callable[[str], None] = print,
    progress: Progress | None = None,
) -> BuildResult:
    """Build `onnx_path` into an engine for this machine's GPU and TensorRT; write engine and sidecar."""
    if not onnx_path.is_file():
        raise SegdeployError(f"{onnx_path}: file not found")
    engine_path = engine_path or default_engine_path(onnx_path, options.precision)
    refuse_overwrite([engine_path, sidecar_path(engine_path)], options.force)
    meta, graph_precision = _graph_facts(onnx_path)
    version = TrtVersion.parse(trt.__version__)
    plan = plan_build(version, graph_precision, options.precision, str(onnx_path), options.dla_core is not None)
    calibration = None
    if plan.calibrate:
        if options.calibration is None:
            raise SegdeployError(f"{onnx_path}: INT8 with builder flags needs --calib calibration/NAME")
        calibration = load_calibration_set(options.calibration)
        check_compatible(calibration, meta, input_channels=CHANNELS)
        if batch_count(calibration, options.calib_batch) == 0:
            raise SegdeployError(f"{options.calibration}: fewer images than one --calib-batch of {options.calib_batch}")
    elif options.calibration is not None:
        raise SegdeployError("--calib is only used with --int8 (builder flags on the FP32 graph)")

    cuda = CudaContext(options.device)
    try:
        logger = _Logger(log)
        builder = trt.Builder(logger)
        flag_bits = sum(1 << int(getattr(trt.NetworkDefinitionCreationFlag, f)) for f in plan.network_flags)
        network = builder.create_network(flag_bits)
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(onnx_path)):
            error = parser.get_error(0)
            raise SegdeployError(f"{onnx_path}: TensorRT's ONNX parser: {error.desc()} (node {error.node()})")
        if network.num_inputs != 1 or network.num_outputs != 1:
            raise SegdeployError(
                f"{onnx_path}: expected one input and one output, found {network.num_inputs} and {network.num_outputs}"
            )
        tensors = [_tensor(network.get_input(0), "input"), _tensor(network.get_output(0), "output")]

        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
        for flag in plan.builder_flags:
            config.set_flag(getattr(trt.BuilderFlag, flag))
        # DLA takes no dynamic shapes: a DLA engine is built for the recipe's opt shape only.
        profile = input_profile(meta, tensors[0].name)
        if options.dla_core is not None:
            profile = InputProfile(profile.name, profile.opt, profile.opt, profile.opt)
        config.add_optimization_profile(_add_profile(builder, profile))

        timing_path = options.timing_cache or engine_path.with_name("timing.cache")
        _use_timing_cache(config, timing_path, logger)

        if options.dla_core is not None:
            if not 0 <= options.dla_core < builder.num_DLA_cores:
                raise SegdeployError(
                    f"--dla-core {options.dla_core}: this device has {builder.num_DLA_cores} DLA cores "
                    "(Jetson AGX/NX Orin and Xavier have 2, desktop GPUs none)"
                )
            config.default_device_type = trt.DeviceType.DLA
            config.DLA_core = options.dla_core
            config.set_flag(trt.BuilderFlag.GPU_FALLBACK)  # layers DLA cannot run go to the GPU

        calibrator = None
        calib_cache = None
        if calibration is not None:
            # Implicit calibration: TensorRT 8.5-10.x only (plan_build refuses it on 11).
            from .calibrator import EntropyCalibrator

            calib_cache = calibration_cache_path(calibration.directory, onnx_path)
            batches = calibration_batches(calibration, meta, options.calib_batch)
            calibrator = EntropyCalibrator(batches, options.calib_batch, calib_cache)
            config.int8_calibrator = calibrator
            fixed = calibration_profile(meta, tensors[0].name, options.calib_batch, calibration.size)
            if not config.set_calibration_profile(_add_profile(builder, fixed)):
                raise SegdeployError(f"{onnx_path}: TensorRT refused the calibration profile {fixed.opt}")

        if version.progress_monitor and progress is not None:
            config.progress_monitor = _progress_monitor(PhaseTracker(progress))

        start = time.perf_counter()
        serialized = builder.build_serialized_network(network, config)
        seconds = time.perf_counter() - start
        if serialized is None:
            detail = logger.errors[-1] if logger.errors else "no reason given"
            raise SegdeployError(f"{onnx_path}: TensorRT could not build an engine ({detail})")
        write_atomic(engine_path, lambda tmp: tmp.write_bytes(memoryview(serialized)))
        cache_bytes = memoryview(config.get_timing_cache().serialize())
        write_atomic(timing_path, lambda tmp: tmp.write_bytes(cache_bytes))

        settings: dict[str, Any] = {
            "workspace_mb": options.workspace_mb,
            "dla_core": options.dla_core,
            "timing_cache": str(timing_path),
            "build_seconds": round(seconds, 1),
        }
        if calibrator is not None and calib_cache is not None and calibration is not None:
            settings["calibration"] = {
                "set": str(calibration.directory),
                "cache": str(calib_cache),
                "cache_reused": calibrator.cache_reused,
                "batches": calibrator.served,
                "batch": options.calib_batch,
            }
        manifest = engine_manifest(
            meta, plan, trt.__version__, cuda.gpu, tensors, profile, onnx_path, engine_path, settings
        )
        write_json(sidecar_path(engine_path), manifest)
    finally:
        cuda.close()
    register_engine(engine_path, onnx_path, plan.precision)
    return BuildResult(engine_path, sidecar_path(engine_path), plan, seconds, timing_path, calib_cache)
