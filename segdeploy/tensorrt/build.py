"""`segdeploy build`: an ONNX graph in, a TensorRT engine and its sidecar manifest out.

Imports tensorrt: call `require_tensorrt()` before importing this module. Paths that differ between
TensorRT versions are chosen in `versions.plan_build` and marked with the version here. Every TensorRT
object lives in a `_Job` and is released, newest first, while the device's CUDA context is current on
this thread (TensorRT frees device memory in the current context); the context is popped after.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import tensorrt as trt

from ..artifacts.integrity import verify_artifact
from ..artifacts.manifest import opset_of
from ..artifacts.metadata import read_graph_metadata
from ..cuda import CudaSession
from ..data.calibration import CalibrationSet, check_compatible, load_calibration_set
from ..errors import SegdeployError
from ..files import refuse_overwrite, write_atomic, write_json
from ..meta import CHANNELS, ModelMeta
from ..precision_table import FP16, INT8, OBEY
from .calibration_key import cache_path, calibration_key, reusable
from .constraints import LayerFacts, fp32_layers
from .feeding import batch_count, calibration_batches
from .options import BuildOptions
from .profiles import InputProfile, calibration_profile, input_profile
from .progress import PhaseTracker
from .result import BuildResult, Progress
from .sidecar import TensorFacts, engine_manifest, register_engine, sidecar_path
from .types import NUMPY_DTYPES, dims_list, numpy_dtype
from .versions import BuildPlan, TrtVersion, plan_build


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


def _graph_facts(onnx_path: Path) -> tuple[ModelMeta, str, int]:
    """The model's metadata, the graph's precision and its opset."""
    model, meta, precision = read_graph_metadata(onnx_path)
    return meta, precision, opset_of(model)


def _dims(shape: tuple[int, ...]) -> trt.Dims:
    return trt.Dims(list(shape))


def _add_profile(builder: trt.Builder, profile: InputProfile) -> trt.IOptimizationProfile:
    trt_profile = builder.create_optimization_profile()
    trt_profile.set_shape(profile.name, _dims(profile.min), _dims(profile.opt), _dims(profile.max))
    return trt_profile


def _tensor(tensor: trt.ITensor, mode: str, onnx_path: Path) -> TensorFacts:
    try:
        dtype = numpy_dtype(tensor.dtype)
    except ValueError:
        raise SegdeployError(
            f"{onnx_path}: {mode} '{tensor.name}' is {tensor.dtype.name}, which segdeploy cannot feed "
            f"(I/O tensors must be one of {', '.join(NUMPY_DTYPES)})"
        ) from None
    return TensorFacts(tensor.name, mode, dtype, dims_list(tensor.shape))


def _layer_facts(layer: trt.ILayer) -> LayerFacts:
    """What constraints.py decides on. Types are the tensors' (ITensor.dtype): get_output_type returns the
    requested output precision, "Default : DataType.FLOAT" until set (TensorRT Python API, ILayer)."""
    outputs = [layer.get_output(j) for j in range(layer.num_outputs)]
    inputs = [layer.get_input(k) for k in range(layer.num_inputs)]
    interpolating = False
    if layer.type.name == "RESIZE":
        # get_layer returns an ILayer: resize_mode needs the downcast NVIDIA's samples use. The mode's
        # enum is ResizeMode on 8.5 and InterpolationMode from 8.6; both name NEAREST, LINEAR, CUBIC.
        layer.__class__ = trt.IResizeLayer
        interpolating = cast(trt.IResizeLayer, layer).resize_mode.name != "NEAREST"
    return LayerFacts(
        layer.type.name,
        tuple(tensor.dtype.name for tensor in outputs),
        tuple(tensor.name for tensor in inputs if tensor is not None),  # optional inputs are None
        tuple(tensor.name for tensor in outputs),
        interpolating,
    )


def _parser_errors(parser: trt.OnnxParser) -> str:
    """Every error the parser recorded (IParser: num_errors, get_error(i)), on one line."""
    errors = [parser.get_error(i) for i in range(parser.num_errors)]
    listed = "; ".join(f"{e.desc()} (node {e.node()})" for e in errors) or "no reason given"
    return f"{len(errors)} error{'s' if len(errors) != 1 else ''}: {listed}"


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


@dataclass
class _Calibration:
    cache: Path
    reused: bool
    batches: int


class _Job:
    """One build's TensorRT objects (builder, network, parser, config, calibrator): created and released
    by the caller with the CUDA context current. Only attributes hold them, never a caller's locals, so
    an exception's traceback cannot keep them alive past `release()`."""

    def __init__(self, onnx_path: Path, options: BuildOptions, plan: BuildPlan, logger: _Logger) -> None:
        self.onnx_path, self.options, self.plan, self.logger = onnx_path, options, plan, logger
        self.builder = trt.Builder(logger)
        flag_bits = sum(1 << int(getattr(trt.NetworkDefinitionCreationFlag, f)) for f in plan.network_flags)
        self.network = self.builder.create_network(flag_bits)
        self.parser = trt.OnnxParser(self.network, logger)
        self.config = self.builder.create_builder_config()
        self.calibrator: Any = None

    def release(self) -> None:
        """Newest first: calibrator, config, parser, network, builder."""
        for name in ("calibrator", "config", "parser", "network", "builder"):
            self.__dict__.pop(name, None)

    def parse(self) -> list[TensorFacts]:
        if not self.parser.parse_from_file(str(self.onnx_path)):
            raise SegdeployError(f"{self.onnx_path}: TensorRT's ONNX parser: {_parser_errors(self.parser)}")
        if self.network.num_inputs != 1 or self.network.num_outputs != 1:
            raise SegdeployError(
                f"{self.onnx_path}: expected one input and one output, "
                f"found {self.network.num_inputs} and {self.network.num_outputs}"
            )
        return [
            _tensor(self.network.get_input(0), "input", self.onnx_path),
            _tensor(self.network.get_output(0), "output", self.onnx_path),
        ]

    def pin_fp32_layers(self, typed_graph: bool) -> int:
        """Keep the FP16 block list in FP32 (constraints.py); OBEY_PRECISION_CONSTRAINTS makes it binding."""
        layers = [self.network.get_layer(i) for i in range(self.network.num_layers)]
        facts = [_layer_facts(layer) for layer in layers]
        pinned = fp32_layers(facts, typed_graph)
        for index in pinned:
            layers[index].precision = trt.float32
            for j in facts[index].float_outputs():  # never TopK's INT32 indices or shape outputs
                layers[index].set_output_type(j, trt.float32)
        return len(pinned)

    def configure(self, profile: InputProfile, timing_path: Path) -> None:
        options = self.options
        self.config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, options.workspace_mb << 20)
        # IBuilderConfig.profiling_verbosity (TensorRT >= 8.2: every version segdeploy builds with): DETAILED
        # keeps each layer's type, tactic and tensor formats in the plan, which IEngineInspector reports
        # (`segdeploy inspect`); the default LAYER_NAMES_ONLY leaves it names only (developer guide, "Engine
        # Inspector"). The cost is that metadata in the plan file; NVTX ranges cost only under a profiler.
        self.config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
        for flag in self.plan.builder_flags:
            self.config.set_flag(getattr(trt.BuilderFlag, flag))
        if self.config.add_optimization_profile(_add_profile(self.builder, profile)) < 0:
            raise SegdeployError(f"{self.onnx_path}: TensorRT refused the optimisation profile {profile.to_dict()}")
        _use_timing_cache(self.config, timing_path, self.logger)
        if options.dla_core is not None:
            if not 0 <= options.dla_core < self.builder.num_DLA_cores:
                raise SegdeployError(
                    f"--dla-core {options.dla_core}: this device has {self.builder.num_DLA_cores} DLA cores "
                    "(Jetson AGX/NX Orin and Xavier have 2, desktop GPUs none)"
                )
            self.config.default_device_type = trt.DeviceType.DLA
            self.config.DLA_core = options.dla_core
            self.config.set_flag(trt.BuilderFlag.GPU_FALLBACK)  # layers DLA cannot run go to the GPU

    def calibrate(
        self, calibration: CalibrationSet, meta: ModelMeta, input_name: str, cuda: CudaSession
    ) -> _Calibration:
        """Implicit calibration: TensorRT 8.5-10.x only (plan_build refuses it on 11)."""
        from .calibrator import EntropyCalibrator

        options = self.options
        cache = cache_path(calibration.directory, self.onnx_path)
        key = calibration_key(self.onnx_path, calibration, options.calib_batch, trt.__version__)
        batches = calibration_batches(calibration, meta, options.calib_batch)
        self.calibrator = EntropyCalibrator(batches, options.calib_batch, cache, key, reusable(cache, key), cuda)
        self.config.int8_calibrator = self.calibrator
        fixed = calibration_profile(meta, input_name, options.calib_batch, calibration.size)
        if not self.config.set_calibration_profile(_add_profile(self.builder, fixed)):
            raise SegdeployError(f"{self.onnx_path}: TensorRT refused the calibration profile {fixed.opt}")
        return _Calibration(cache, self.calibrator.cache_reused, 0)

    def build(self, progress: Progress | None, version: TrtVersion) -> bytes:
        if version.progress_monitor and progress is not None:
            self.config.progress_monitor = _progress_monitor(PhaseTracker(progress))
        serialized = self.builder.build_serialized_network(self.network, self.config)
        if serialized is None:
            errors = self.logger.errors
            detail = errors[-1] if errors else "no reason given"
            raise SegdeployError(f"{self.onnx_path}: TensorRT could not build an engine ({detail})")
        data = bytes(memoryview(serialized))
        self.timing = bytes(memoryview(self.config.get_timing_cache().serialize()))
        return data


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
    verify_artifact(onnx_path)
    engine_path = engine_path or default_engine_path(onnx_path, options.precision)
    refuse_overwrite([engine_path, sidecar_path(engine_path)], options.force)
    meta, graph_precision, opset = _graph_facts(onnx_path)
    version = TrtVersion.parse(trt.__version__)
    plan = plan_build(version, graph_precision, options.precision, str(onnx_path), options.dla_core is not None, opset)
    if plan.mode == "strongly-typed" and onnx_path.name == INT8.graph_file:
        log(
            f"note: {onnx_path.name} keeps its float remainder in FP32, which a strongly typed build obeys; "
            f"{INT8.strongly_typed_file} beside it has it in FP16"
        )
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

    timing_path = options.timing_cache or engine_path.with_name("timing.cache")
    with CudaSession(options.device) as cuda, cuda.current():
        job = _Job(onnx_path, options, plan, _Logger(log))
        try:
            tensors = job.parse()
            # DLA takes no dynamic shapes: a DLA engine is built for the recipe's opt shape only.
            profile = input_profile(meta, tensors[0].name)
            if options.dla_core is not None:
                profile = InputProfile(profile.name, profile.opt, profile.opt, profile.opt)
            pinned = job.pin_fp32_layers(graph_precision == FP16.name) if OBEY in plan.builder_flags else 0
            job.configure(profile, timing_path)
            calibrated = None
            if calibration is not None:
                calibrated = job.calibrate(calibration, meta, tensors[0].name, cuda)
            start = time.perf_counter()
            serialized = job.build(progress, version)
            seconds = time.perf_counter() - start
            if calibrated is not None:
                calibrated.batches = job.calibrator.served
            timing = job.timing
        finally:
            job.release()
        gpu = cuda.gpu
    write_atomic(engine_path, lambda tmp: tmp.write_bytes(serialized))
    write_atomic(timing_path, lambda tmp: tmp.write_bytes(timing))

    settings: dict[str, Any] = {
        "workspace_mb": options.workspace_mb,
        "dla_core": options.dla_core,
        "timing_cache": str(timing_path),
        "build_seconds": round(seconds, 1),
        "fp32_pinned_layers": pinned,
        "profiling_verbosity": "DETAILED",
    }
    if calibrated is not None and calibration is not None:
        settings["calibration"] = {
            "set": str(calibration.directory),
            "cache": str(calibrated.cache),
            "cache_reused": calibrated.reused,
            "batches": calibrated.batches,
            "batch": options.calib_batch,
        }
    manifest = engine_manifest(meta, plan, trt.__version__, gpu, tensors, profile, onnx_path, engine_path, settings)
    write_json(sidecar_path(engine_path), manifest)
    register_engine(engine_path, onnx_path, plan.precision)
    calibration_cache = calibrated.cache if calibrated is not None else None
    return BuildResult(onnx_path, engine_path, sidecar_path(engine_path), plan, seconds, timing_path, calibration_cache)
