"""Small helpers the tests share."""

from __future__ import annotations

import dataclasses
import html
import json
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from segdeploy.recipes import Recipe, load_recipe


def one_line_error(result: Result, *fragments: str) -> str:
    """Assert a CLI failure printed exactly one line, no traceback, and mentions every fragment."""
    assert result.exit_code not in (0, None), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    text = result.stderr.strip()
    assert "Traceback" not in result.output and "Traceback" not in text
    assert len(text.splitlines()) == 1, text
    for fragment in fragments:
        assert fragment in text, text
    return text


def on_threads(work: Callable[[int], None], values: tuple[int, ...] = (1, 2, 3)) -> None:
    """Run `work(value)` on one thread per value, all at once, and wait for every one."""
    threads = [threading.Thread(target=work, args=(value,)) for value in values]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def tiny_recipe(architecture: str = "unet", epochs: int = 1) -> Recipe:
    """A recipe small enough to train and export in seconds on 64x96 images."""
    recipe = load_recipe(architecture)
    train = dataclasses.replace(recipe.train, epochs=epochs, batch_size=4, crop=(64, 64), repeats=1)
    export = dataclasses.replace(
        recipe.export, height=(32, 64, 512), width=(32, 96, 512), probe_sizes=[(64, 96), (96, 128)]
    )
    return recipe.replace(input_size=(64, 96), train=train, export=export)


CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
_IMAGE_PROBE = (
    "<script>window.addEventListener('load', () => {"
    "const seen = [...document.images].map(i => ({complete: i.complete, width: i.naturalWidth}));"
    "const out = document.createElement('pre'); out.id = 'image-probe'; out.textContent = JSON.stringify(seen);"
    "document.body.appendChild(out);});</script>"
)


def images_in_chromium(chromium: str, page: Path, work: Path) -> list[dict[str, Any]]:
    """Open a copy of `page` in headless Chromium with a probe script added; per <img>, whether it
    loaded (complete) and its decoded width (naturalWidth, 0 when broken)."""
    probe = work / f"probe-{page.name}"
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", _IMAGE_PROBE + "</body>"), encoding="utf-8")
    done = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tempfile.mkdtemp(dir=work)}",
            "--virtual-time-budget=15000",
            "--dump-dom",
            probe.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    found = re.search(r'<pre id="image-probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"chromium exit {done.returncode}: {done.stderr[-2000:]}"
    return list(json.loads(html.unescape(found.group(1))))


def _openvino_bf16() -> bool | None:
    """None: OpenVINO is not installed; else whether its CPU plugin computes BF16 natively here."""
    try:
        import openvino
    except ImportError:
        return None
    return "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


OPENVINO_BF16 = _openvino_bf16()
needs_openvino = pytest.mark.skipif(
    OPENVINO_BF16 is None, reason='OpenVINO is not installed (pip install "segdeploy[openvino]")'
)
needs_native_bf16 = pytest.mark.skipif(
    not OPENVINO_BF16, reason="needs OpenVINO and a CPU with native BF16 (AVX512-BF16 or AMX-BF16)"
)
