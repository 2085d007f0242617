"""Make the tensorrt-stubs package usable by mypy: copy its stubs into .ci/stubs-tensorrt and repair them.

tensorrt-stubs (10.13.0.35.1) is machine-generated and cannot be used as installed: its `tensorrt/`
folder has no py.typed marker, so mypy ignores it; a few signatures use the keyword `in` as a parameter
name or put a required parameter after defaulted ones; it imports `tensorrt_libs`, which only the
real wheel has; and its `bool` data type shadows the builtin in its annotations. Install it with `pip install --no-deps tensorrt-stubs==10.13.0.35.1` (its dependencies
are the real TensorRT wheels, which need NVIDIA's index) and run this script; pyproject's mypy_path
points at the result.
"""

from __future__ import annotations

import re
import shutil
import sysconfig
from pathlib import Path

TARGET = Path(__file__).resolve().parent / "stubs-tensorrt"
REPAIRS = [
    (re.compile(r"([(,] ?(?:self: \w+, )?)in: "), r"\1in_: "),  # `in` is a keyword
    (re.compile(r"power: Weights = None, channel_axis: int\)"), "power: Weights = None, channel_axis: int = ...)"),
    (re.compile(r"^import tensorrt_libs as tensorrt_libs$", re.M), ""),
    # The module defines `bool: DataType`, which shadows the builtin in its own annotations; mypy reports
    # every `-> bool` there once typing_extensions is in the import graph (pydantic brings it).
    (re.compile(r"^import typing$", re.M), "import builtins\nimport typing"),
    (re.compile(r"(?<=[\[:>,] )bool\b"), "builtins.bool"),
]


def main() -> None:
    site = Path(sysconfig.get_paths()["purelib"])
    if not (site / "tensorrt_stubs").is_dir():
        raise SystemExit("tensorrt-stubs is not installed: pip install --no-deps tensorrt-stubs==10.13.0.35.1")
    shutil.rmtree(TARGET, ignore_errors=True)
    for package in ("tensorrt", "tensorrt_bindings"):
        shutil.copytree(site / package, TARGET / package, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    for stub in TARGET.rglob("*.pyi"):
        text = stub.read_text()
        for pattern, replacement in REPAIRS:
            text = pattern.sub(replacement, text)
        stub.write_text(text)
    print(f"tensorrt stubs ready in {TARGET}")


if __name__ == "__main__":
    main()
