"""The `segdeploy` command line: a thin skin over the library."""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from .errors import ReportedElsewhere, SegdeployError, SegdeployWarning

if TYPE_CHECKING:
    from .geo.coverage import CoverageReport

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # help texts show defaults as [like this], which rich would take for markup
    help="Train, export and deploy semantic-segmentation models, and prove they still agree.",
)
F = TypeVar("F", bound=Callable[..., Any])


def _console() -> Any:
    from .console import console

    return console


def _say(text: str) -> None:
    """Print a line as it is: paths and names may hold brackets, which rich would take for markup."""
    _console().print(text, markup=False, highlight=False)


def _note(label: str, text: str) -> None:
    from rich.markup import escape

    _console().print(f"[yellow]{label}[/] {escape(text)}", highlight=False, soft_wrap=True)  # one line, unfolded


def _warning_lines(shown: set[str]) -> Callable[..., None]:
    """A `warnings.showwarning` that prints each SegdeployWarning once, as one 'warning:' line."""
    passed_on = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if not issubclass(category, SegdeployWarning):
            passed_on(message, category, *args, **kwargs)
        elif str(message) not in shown:
            shown.add(str(message))
            _note("warning:", str(message))

    return show


def reports_errors(command: F) -> F:
    """Turn SegdeployError, and SIGINT/SIGTERM, into one line on stderr and a non-zero exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .interrupts import Interrupted, signals_as_exceptions

        try:
            with signals_as_exceptions(), warnings.catch_warnings():
                warnings.simplefilter("always", SegdeployWarning)
                warnings.showwarning = _warning_lines(set())
                return command(*args, **kwargs)
        except (SegdeployError, Interrupted) as exc:
            if not isinstance(exc, ReportedElsewhere):
                typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


RecipeArg = Annotated[str, typer.Argument(help="Recipe name (see recipes/) or path to a recipe YAML.")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Your own model as package.module:factory.")]
EncoderOpt = Annotated[str | None, typer.Option(help="Encoder, e.g. resnet18, resnet50, mobilenet_v3.")]
DataOpt = Annotated[Path, typer.Option("--data", help="Dataset YAML (see recipes/data/).")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite existing artifacts.")]
BACKEND_HELP = "Backend for the ONNX models: onnxruntime, openvino, openvino:bf16 (OpenVINO, BF16 float ops)"
BackendsOpt = Annotated[list[str] | None, typer.Option("--backend", help=BACKEND_HELP + ", repeatable [onnxruntime].")]
BackendOpt = Annotated[str | None, typer.Option("--backend", help=BACKEND_HELP + " [onnxruntime].")]
FieldsOpt = Annotated[
    Path | None, typer.Option(help="GeoJSON of field polygons (name/id property; any CRS): a table per field.")
]
PolygonsOpt = Annotated[
    bool, typer.Option("--polygons", help="Also write the --patch-class regions as patches.geojson.")
]
PatchClassOpt = Annotated[str, typer.Option(help="The class whose patches --polygons writes.")]
MinPatchAreaOpt = Annotated[
    float | None, typer.Option(help="Smallest patch --polygons keeps, in m² [0.01: a 10 cm square].")
]


@app.command()
@reports_errors
def models() -> None:
    """List the architectures with parameters, GFLOPs at the recipe input size and output stride."""
    from .console import show
    from .look.tables import models_table
    from .models.info import model_facts

    show(models_table(model_facts()))


@app.command()
@reports_errors
def train(
    recipe: RecipeArg,
    data: DataOpt,
    out: Annotated[Path | None, typer.Option(help="Output folder [runs/RECIPE, or --resume's folder].")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs.")] = None,
    batch: Annotated[int | None, typer.Option(help="Batch size per process.")] = None,
    crop: Annotated[str | None, typer.Option(help="Training crop HxW.")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate (AdamW) for one process's batch.")] = None,
    loss: Annotated[str | None, typer.Option(help="ce, dice, focal or ce+dice.")] = None,
    class_weights: Annotated[str | None, typer.Option(help="Comma-separated cross-entropy class weights.")] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    amp: Annotated[
        bool | None, typer.Option(help="Mixed precision (bf16, or fp16 on older GPUs; bf16 on CPUs that have it).")
    ] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue from this last.pt.")] = None,
    pretrained: Annotated[bool, typer.Option("--pretrained", help="Start from ImageNet encoder weights.")] = False,
    model: ModelOpt = None,
    encoder: EncoderOpt = None,
    force: ForceOpt = False,
) -> None:
    """Train a recipe on a dataset; writes best.pt, last.pt and history.json. Under torchrun, each process
    trains on its share (DistributedDataParallel) and rank 0 alone prints and writes."""
    from .train.options import TrainOptions, train_recipe

    options = TrainOptions(epochs, batch, crop, lr, loss, class_weights, amp)
    result = train_recipe(
        recipe, data, out, options, model=model, encoder=encoder, device=device, resume=resume,
        pretrained=pretrained, force=force, log=_say,
    )  # fmt: skip
    if result is not None:
        _say(f"best val mIoU {result.best_miou:.4f}: {result.best}  (last: {result.last})")


@app.command()
@reports_errors
def export(
    recipe: Annotated[
        str | None, typer.Argument(help="Recipe name or path (optional with a segdeploy checkpoint).")
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Trained weights: a segdeploy checkpoint or a plain state dict.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder [exports/NAME].")] = None,
    fold_preprocess: Annotated[
        bool, typer.Option("--fold-preprocess", help="uint8 NHWC input, normalisation in the graph.")
    ] = False,
    argmax: Annotated[bool, typer.Option("--argmax", help="End the graph with argmax: int32 class maps out.")] = False,
    fp16: Annotated[bool, typer.Option("--fp16", help="Also write model.fp16.onnx.")] = False,
    int8: Annotated[bool, typer.Option("--int8", help="Also write model.int8*.onnx; needs --calib.")] = False,
    calib: Annotated[Path | None, typer.Option(help="Calibration set folder (segdeploy calibrate).")] = None,
    calib_method: Annotated[str, typer.Option(help="minmax, entropy or percentile.")] = "entropy",
    quantizer: Annotated[
        str, typer.Option(help="INT8 quantizer: ours (ONNX Runtime) or modelopt (NVIDIA ModelOpt's ONNX PTQ).")
    ] = "ours",
    modelopt_python: Annotated[
        Path | None,
        typer.Option(
            envvar="SEGDEPLOY_MODELOPT_PYTHON",
            help="Python of a separate virtual environment with nvidia-modelopt[onnx], for --quantizer modelopt.",
        ),
    ] = None,
    max_miou_drop: Annotated[float | None, typer.Option(help="INT8 accuracy guard [recipe tolerance.int8].")] = None,
    val_split: Annotated[str, typer.Option(help="Split of the calibration data set for the INT8 guard.")] = "val",
    sensitivity: Annotated[
        bool, typer.Option("--sensitivity", help="Rank INT8 layers by harm even when the drop is within bounds.")
    ] = False,
    pretrained: Annotated[
        bool, typer.Option("--pretrained", help="Without --checkpoint: ImageNet encoder weights.")
    ] = False,
    engines: Annotated[
        bool, typer.Option(help="Build a TensorRT engine beside each ONNX model when TensorRT is installed.")
    ] = True,
    opset: Annotated[int | None, typer.Option(help="ONNX opset, 13 to 21 [the recipe's, 17].")] = None,
    model: ModelOpt = None,
    encoder: EncoderOpt = None,
    force: ForceOpt = False,
) -> None:
    """Export to ONNX (model.onnx + model.pt + reference.npz + manifest.json), validated against PyTorch;
    --fp16 and --int8 add reduced-precision graphs; with TensorRT installed, an engine beside each."""
    from .console import show
    from .export.pipeline import export_artifacts
    from .look.tables import int8_summary, sensitivity_table
    from .meta import IOSpec
    from .quantize.pipeline import PrecisionOptions

    precision = PrecisionOptions.from_flags(
        fp16, int8, calib, calib_method, max_miou_drop, val_split, sensitivity, quantizer, modelopt_python
    )
    result = export_artifacts(
        recipe, checkpoint, out, IOSpec(fold_preprocess, argmax), force, pretrained, precision, _say, opset,
        model=model, encoder=encoder,
    )  # fmt: skip
    if not result.trained:
        _note("note:", "no --checkpoint given, exported untrained weights")
    for probe in result.probes:
        _say(
            f"validated {probe.batch}x{probe.height}x{probe.width}: max |logit difference| "
            f"{probe.max_abs_diff:.2e}, label mismatches {probe.label_mismatches}"
        )
    if result.int8 is not None:
        guard = result.int8.to_dict()
        _say(int8_summary(guard))
        if guard["sensitivity_ranking"]:
            show(sensitivity_table(guard))
    written = [result.onnx, *result.reduced.values(), result.checkpoint, result.reference, result.manifest]
    _say(f"wrote {', '.join(map(str, written))}")
    result.check_int8_gate()
    if not engines:
        return
    from .export.engines import build_engines
    from .precision_table import INT8
    from .tensorrt import INSTALL_HINT

    built = build_engines([result.onnx, *result.reduced.values()], force, _say, _build_progress)
    if built is None:
        _note("note:", f"wrote ONNX models only; {INSTALL_HINT}")
    for engine in built or []:
        _say(f"wrote {engine.engine} ({engine.plan.mode}, {engine.plan.precision}, {engine.seconds:.0f} s)")
    for engine in built or []:  # after every build: the FP16 engine is there to reuse
        if engine.plan.precision == INT8.name:
            from .bench.speed_gate import speed_gate
            from .tensorrt.options import BuildOptions

            speed_gate(engine.onnx, engine.engine, BuildOptions(force=force), _say, _build_progress)


@contextlib.contextmanager
def _build_progress(graph: Path) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar fed by TensorRT's builder phases (TensorRT >= 10; a spinner before)."""
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=_console(), transient=True) as bar:
        task = bar.add_task(escape(f"building {graph.name}"), total=None)

        def update(phase: str, done: int, total: int) -> None:
            bar.update(task, description=escape(f"{graph.name}: {phase}"), completed=done, total=total)

        yield update


@app.command()
@reports_errors
def build(
    onnx: Annotated[Path, typer.Argument(help="An ONNX model written by 'segdeploy export'.")],
    out: Annotated[
        Path | None, typer.Option(help="Engine file [MODEL.plan; MODEL.flags-PRECISION.plan with --fp16/--int8].")
    ] = None,
    fp16: Annotated[
        bool, typer.Option("--fp16", help="Builder-flag FP16 from an FP32 graph (TensorRT 8.5-10.x).")
    ] = False,
    int8: Annotated[
        bool, typer.Option("--int8", help="Builder-flag INT8 with the entropy calibrator (8.5-10.x); needs --calib.")
    ] = False,
    calib: Annotated[
        Path | None, typer.Option(help="Calibration set folder for --int8; its cache is kept there.")
    ] = None,
    calib_batch: Annotated[int, typer.Option(help="Images per calibration batch.")] = 8,
    workspace: Annotated[int, typer.Option(help="Builder workspace limit in MiB.")] = 2048,
    timing_cache: Annotated[
        Path | None, typer.Option(help="Timing cache file, reused across builds [timing.cache beside the engine].")
    ] = None,
    dla_core: Annotated[
        int | None, typer.Option(help="Run on this DLA core (Jetson), layers it cannot run fall back to the GPU.")
    ] = None,
    device: Annotated[int, typer.Option(help="CUDA device index.")] = 0,
    speed_gate: Annotated[
        bool, typer.Option(help="After an INT8 build, time it against an FP16 engine of the same model.")
    ] = True,
    force: ForceOpt = False,
) -> None:
    """Build a TensorRT engine (and its sidecar manifest) from an ONNX model, on the GPU that will run it.
    TensorRT >= 10 builds the graph strongly typed: FP16 and INT8 come from model.fp16.onnx and
    model.int8-fp16.onnx (8.x: model.int8.onnx, with INT8 and FP16 flags). --fp16/--int8 take the
    builder-flag path from model.onnx instead (JetPack 5/6).
    An INT8 engine is timed against an FP16 one (model.fp16.plan, built or reused): the speed gate."""
    from .precision_table import INT8
    from .tensorrt.entry import build_if_installed
    from .tensorrt.options import BuildOptions

    options = BuildOptions.from_flags(
        fp16, int8, calib, calib_batch=calib_batch, workspace_mb=workspace, timing_cache=timing_cache,
        dla_core=dla_core, device=device, force=force,
    )  # fmt: skip
    result = build_if_installed(onnx, out, options, _say, _build_progress)
    _say(
        f"wrote {result.engine} and {result.sidecar.name}: {result.plan.mode}, {result.plan.precision}, "
        f"built in {result.seconds:.0f} s; timing cache {result.timing_cache}"
        + (f"; calibration cache {result.calibration_cache}" if result.calibration_cache else "")
    )
    if speed_gate and result.plan.precision == INT8.name:
        from .bench.speed_gate import speed_gate as run_speed_gate

        run_speed_gate(onnx, result.engine, options, _say, _build_progress)


@app.command()
@reports_errors
def inspect(
    engine: Annotated[Path, typer.Argument(help="A TensorRT engine built by 'segdeploy build'.")],
    device: Annotated[int, typer.Option(help="CUDA device index.")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write every layer as JSON.")] = None,
    force: ForceOpt = False,
) -> None:
    """Which precision each layer of an engine runs in (TensorRT's engine inspector): a table of layers
    and one line of layers per precision, e.g. to see which layers run INT8."""
    from .backends.engine_layers import inspect_engine
    from .console import show
    from .files import refuse_overwrite, write_json
    from .look.tables import engine_layers_table

    refuse_overwrite([json_out] if json_out is not None else [], force)
    layers = inspect_engine(engine, device)
    if layers.detailed:
        show(engine_layers_table(layers))
        _say(f"{engine.name}: {layers.summary()}")
    else:
        _note("note:", layers.lacking_detail())
    if json_out is not None:
        write_json(json_out, layers.to_dict())
        _say(f"wrote {json_out}")


@app.command()
@reports_errors
def parity(
    artifact_dir: Annotated[Path, typer.Argument(help="An export folder (holds manifest.json).")],
    data: Annotated[
        Path | None,
        typer.Option(help="Dataset YAML: PyTorch runs over its split; with the stored reference, the labels."),
    ] = None,
    split: Annotated[str | None, typer.Option(help="Split to evaluate [val; stored: the reference's].")] = None,
    batch: Annotated[int, typer.Option(help="Images per inference call.")] = 4,
    reference: Annotated[
        str | None,
        typer.Option(
            help="pytorch (model.pt over --data's split) or stored (the export's reference.npz, no PyTorch "
            "needed) [pytorch with --data and PyTorch installed, else stored]."
        ),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the report as JSON.")] = None,
    save_disagreement: Annotated[
        Path | None,
        typer.Option(
            help="Write per-image maps of where each artifact disagrees with the reference (yellow: on a boundary)."
        ),
    ] = None,
    backend: BackendsOpt = None,
    force: ForceOpt = False,
) -> None:
    """mIoU, per-class IoU, agreement and logit differences of every artifact against PyTorch, or against
    the reference the export stored (without PyTorch, on the target)."""
    from .console import show
    from .data.spec import load_dataset_spec
    from .look.tables import parity_table
    from .parity import ParityOptions
    from .stored_parity import check_parity

    spec = None if data is None else load_dataset_spec(data)
    options = ParityOptions(
        batch_size=batch, save_disagreement=save_disagreement, json_out=json_out, force=force,
        backends=tuple(backend or []),
    )  # fmt: skip
    report = check_parity(artifact_dir, spec, split, reference, options)
    show(parity_table(report.to_dict()))
    for note in report.skipped:
        _note("skipped", note)
    for warning in report.warnings:
        _note("warning:", warning)
    for row in report.rows:
        for failure in row.failures:
            typer.echo(f"parity: {row.artifact}: {failure}", err=True)
    if not report.passed:
        raise typer.Exit(1)


@app.command()
@reports_errors
def bench(
    artifacts: Annotated[
        list[Path],
        typer.Argument(help="Checkpoints (.pt, PyTorch), ONNX models (each --backend) and engines (.plan, TensorRT)."),
    ],
    shape: Annotated[
        list[str] | None, typer.Option(help="HxW, repeatable for a scaling table [recipe input size].")
    ] = None,
    batch: Annotated[int, typer.Option(help="Images per call.")] = 1,
    iterations: Annotated[int, typer.Option(help="Timed iterations per artifact and shape.")] = 30,
    duration: Annotated[float | None, typer.Option(help="Seconds per shape instead of --iterations.")] = None,
    warmup: Annotated[int, typer.Option(help="Untimed iterations first.")] = 5,
    threads: Annotated[int, typer.Option(help="CPU threads for PyTorch, ONNX Runtime and OpenVINO (0: default).")] = 0,
    provider: Annotated[list[str] | None, typer.Option(help="ONNX Runtime execution provider, repeatable.")] = None,
    backend: BackendsOpt = None,
    torch_variant: Annotated[
        list[str] | None,
        typer.Option(help="PyTorch variant, repeatable: eager, channels_last, autocast, compile, cudagraph [eager]."),
    ] = None,
    cuda_graphs: Annotated[
        bool, typer.Option("--cuda-graphs", help="TensorRT engines both without and with CUDA-graph replay.")
    ] = False,
    device: Annotated[str, typer.Option(help="PyTorch device (cpu, cuda or cuda:N); engines run on that GPU.")] = "cpu",
    denormals: Annotated[str, typer.Option(help="flush (denormals as zero, every backend) or keep.")] = "flush",
    memory: Annotated[bool, typer.Option(help="Measure peak RSS per artifact in a fresh process.")] = True,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write every figure and setting as JSON.")] = None,
    plot: Annotated[Path | None, typer.Option(help="PNG of latency against pixels (needs two shapes or more).")] = None,
    force: ForceOpt = False,
) -> None:
    """Latency and throughput of every artifact, interleaved in one run so their ratios hold."""
    from .bench.outputs import bench_to_files
    from .bench.runner import BenchConfig
    from .console import show
    from .look.tables import bench_table

    config = BenchConfig.from_options(
        shapes=shape,
        batch=batch,
        iterations=iterations,
        duration=duration,
        warmup=warmup,
        threads=threads,
        providers=provider,
        backends=backend,
        torch_variants=torch_variant,
        both_cuda_graphs=cuda_graphs,
        device=device,
        denormals=denormals,
        memory=memory,
    )
    report = bench_to_files(artifacts, config, json_out, plot, force, log=_say)
    show(bench_table(report))
    for label, fit in report.scaling.items():
        _say(f"{label}: {fit['intercept_ms']:.1f} ms + {fit['ms_per_megapixel']:.1f} ms per megapixel")
    for label, mem in report.memory.items():
        _say(f"{label}: peak RSS {mem['peak_rss_mb']:.0f} MiB ({mem['baseline_rss_mb']:.0f} before loading)")
    if plot is not None:
        _say(f"wrote {plot}")


@app.command()
@reports_errors
def calibrate(
    data: DataOpt,
    split: Annotated[str, typer.Option(help="Split to draw from.")] = "train",
    num: Annotated[int, typer.Option(help="Number of images.")] = 64,
    name: Annotated[str | None, typer.Option(help="Set name: calibration/NAME [data set name].")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder, instead of calibration/NAME.")] = None,
    recipe: Annotated[str | None, typer.Option(help="Recipe whose normalisation the set records [unet].")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random part of the choice.")] = 0,
    force: ForceOpt = False,
) -> None:
    """Choose an INT8 calibration set that covers every class, deterministically."""
    from .data.calibration import make_calibration_set

    result = make_calibration_set(data, split, num, seed, name=name, out=out, recipe=recipe, force=force)
    _say(f"wrote {result.directory}: {result.summary()}")


@app.command()
@reports_errors
def predict(
    artifact: Annotated[Path, typer.Argument(help="A checkpoint (.pt), ONNX model or engine (.plan).")],
    inputs: Annotated[list[Path], typer.Argument(help="Images, folders of images, video files (needs OpenCV).")],
    out: Annotated[Path, typer.Option(help="Output folder: masks/ and overlays/.")],
    overlay: Annotated[bool, typer.Option("--overlay", help="Also write colour overlays with a legend.")] = False,
    alpha: Annotated[float, typer.Option(help="Opacity of the overlay colours, 0 to 1.")] = 0.5,
    size: Annotated[
        str, typer.Option(help="Working resolution HxW, 'recipe' (the model's input size) or 'native'.")
    ] = "recipe",
    backend: BackendOpt = None,
    force: ForceOpt = False,
    channels: Annotated[
        str, typer.Option(help="Channel order of the files' pixel data: rgb, or bgr for OpenCV frames saved as RGB.")
    ] = "rgb",
    tile: Annotated[
        int | None,
        typer.Option(
            help="Tile every image, at its own resolution, in tiles of N px [only images larger than the model "
            "takes, in the largest tiles it takes, at most 1024]."
        ),
    ] = None,
    overlap: Annotated[int | None, typer.Option(help="Overlap of neighbouring tiles in px [tile / 8].")] = None,
    coverage: Annotated[
        bool, typer.Option("--coverage", help="Also coverage.json/csv of the image's class map (implied by the next).")
    ] = False,
    fields: FieldsOpt = None,
    polygons: PolygonsOpt = False,
    patch_class: PatchClassOpt = "weed",
    min_patch_area: MinPatchAreaOpt = None,
) -> None:
    """Class-index palette PNG masks (and colour overlays) for images, folders and videos; images larger
    than the model takes are tiled, TIFF orthomosaics by windows into class-map GeoTIFFs with previews."""
    from .geo.coverage import CoverageRequest
    from .look.predict import predict as run_predict

    minimum = {} if min_patch_area is None else {"min_patch_area_m2": min_patch_area}
    request = CoverageRequest(fields, polygons, patch_class=patch_class, **minimum)
    wanted = coverage or request.needs_areas
    result = run_predict(
        artifact, inputs, out, overlay, alpha, size, force, channels=channels, backend=backend, tile=tile,
        overlap=overlap, coverage=request if wanted else None, log=_say,
    )  # fmt: skip
    overlays = f" and {len(result.overlays)} overlays in {out / 'overlays'}" if overlay else ""
    previews = f" and {len(result.previews)} previews in {out / 'previews'}" if result.previews else ""
    _say(f"wrote {len(result.masks)} masks in {out / 'masks'}{overlays}{previews}")
    if result.coverage is not None:
        _say_coverage(result.coverage, result.masks[0])
        _say(f"wrote {', '.join(str(out / p.name) for p in result.coverage.files)}")


@app.command()
@reports_errors
def report(
    artifact_dir: Annotated[Path, typer.Argument(help="An export folder, with the parity and bench JSON of its runs.")],
    data: Annotated[
        Path | None, typer.Option(help="Dataset YAML for the image rows [the one the parity JSON names].")
    ] = None,
    runs: Annotated[list[Path] | None, typer.Option(help="A parity or bench JSON kept elsewhere, repeatable.")] = None,
    num: Annotated[int, typer.Option(help="Images where the artifacts disagree most.")] = 4,
    out: Annotated[
        Path | None, typer.Option(help="HTML file [ARTIFACT_DIR/report.html]; the .md goes beside it.")
    ] = None,
    force: ForceOpt = False,
) -> None:
    """One self-contained HTML page (images embedded) and a Markdown summary of parity and bench runs."""
    from .look.report import make_report

    html, markdown = make_report(artifact_dir, out or artifact_dir / "report.html", data, runs, num, force, log=_say)
    _say(f"wrote {html} ({html.stat().st_size / 1e6:.2f} MB) and {markdown}")


@app.command()
@reports_errors
def compare(
    artifacts: Annotated[list[Path], typer.Argument(help="Checkpoints (.pt) or ONNX models of the same classes.")],
    data: DataOpt,
    split: Annotated[str, typer.Option(help="Split to draw the images from.")] = "val",
    num: Annotated[int, typer.Option(help="Images (the first NUM of the split).")] = 10,
    boundary: Annotated[int, typer.Option(help="Width in px of the band around ground-truth boundaries.")] = 3,
    figure: Annotated[Path, typer.Option(help="PNG of the masks side by side.")] = Path("compare.png"),
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write every figure as JSON.")] = None,
    backend: BackendOpt = None,
    force: ForceOpt = False,
) -> None:
    """Several models on the same images: mIoU, and the error on ground-truth boundaries apart from
    the interior error."""
    from .console import show
    from .data.spec import load_dataset_spec
    from .look.compare import compare_models
    from .look.tables import compare_table

    spec = load_dataset_spec(data)
    result = compare_models(artifacts, spec, split, num, boundary, _say, figure, json_out, force, backend)
    show(compare_table(result))
    _say(f"wrote {figure}" + (f" and {json_out}" if json_out else ""))


@app.command()
@reports_errors
def demo(
    data: Annotated[Path | None, typer.Option(help="Dataset YAML; default: a procedural crop/weed set.")] = None,
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("segdeploy-demo"),
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 8,
    force: ForceOpt = False,
) -> None:
    """Train, export and check parity end to end on the CPU in a few minutes."""
    from .console import show
    from .demo import run_demo
    from .look.tables import parity_table

    result = run_demo(out, data, epochs=epochs, force=force, log=_say)
    show(parity_table(result.parity.to_dict()))
    _say(
        f"artifacts: data {result.data.parent}, checkpoints {result.training.best.parent}, "
        f"export {result.export.out_dir} (model.onnx, model.pt, reference.npz, manifest.json), report {result.report}"
    )
    if not result.parity.passed:
        raise typer.Exit(1)


@app.command()
@reports_errors
def coverage(
    class_map: Annotated[
        Path, typer.Argument(help="A class-map raster: one uint8 band of class indices (GeoTIFF, PNG).")
    ],
    out: Annotated[Path, typer.Option(help="Output folder: coverage.json, coverage.csv (and patches.geojson).")],
    classes: Annotated[
        str | None, typer.Option(help="Class names by index, comma-separated, e.g. soil,crop,weed.")
    ] = None,
    model: Annotated[
        Path | None, typer.Option("--model", help="Class names from an export folder or its ONNX model.")
    ] = None,
    fields: FieldsOpt = None,
    polygons: PolygonsOpt = False,
    patch_class: PatchClassOpt = "weed",
    min_patch_area: MinPatchAreaOpt = None,
    force: ForceOpt = False,
) -> None:
    """Per-class pixel counts, shares and areas (m², ha; a projected CRS) of a class map, for the whole
    raster and per field; class names from --classes or --model, else the class indices."""
    from .geo.coverage import write_coverage

    if classes is not None and model is not None:
        raise SegdeployError("--classes and --model both name the classes; choose one")
    names = [n.strip() for n in classes.split(",")] if classes is not None else None  # checked by write_coverage
    if model is not None:
        from .artifacts.class_names import export_class_names

        names = export_class_names(model)
    minimum = {} if min_patch_area is None else {"min_patch_area_m2": min_patch_area}
    report = write_coverage(class_map, out, names, fields, polygons, patch_class=patch_class, force=force, **minimum)
    _say_coverage(report, class_map)
    _say(f"wrote {', '.join(str(p) for p in report.files)}")


def _say_coverage(report: CoverageReport, class_map: Path) -> None:
    rows = report.whole.rows(report.class_names)
    _say(", ".join(f"{r['class']} {100 * (r['share'] or 0):.2f}%" for r in rows) + f" of {sum(report.whole.counts)} px")
    if not report.area.known:
        _note("note:", f"no areas: {class_map} {report.area.missing}")
    if report.fields_without_pixels:
        _note("note:", f"fields without pixels in {class_map}: {', '.join(report.fields_without_pixels)}")
    if report.patches is not None:
        patches = report.patches
        _say(f"{patches['count']} {patches['class']} patches of {patches['min_area_m2']} m² or more")
