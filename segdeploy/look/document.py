"""A report as plain data: sections of text, tables, plots and image grids, rendered to HTML or Markdown."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NUMBER = re.compile(r"[+-]?\d[\d,]*(\.\d+)?(e[+-]?\d+)?\s*(%|x|ms|MB|MiB|GiB)?")


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""


def is_number(cell: str) -> bool:
    """A cell that holds a figure (set right-aligned): 12.5, -0.3%, 1.2e-03, 2.00x, 35 ms."""
    return _NUMBER.fullmatch(cell) is not None


@dataclass(frozen=True)
class Picture:
    """An encoded image (PNG or JPEG) with its caption."""

    data: bytes
    mime: str
    caption: str = ""


@dataclass(frozen=True)
class PanelGrid:
    """Rows of pictures under column headings; each row is (label, pictures), None leaves a cell empty."""

    columns: list[str]
    rows: list[tuple[str, list[Picture | None]]]
    caption: str = ""


Block = Text | Table | Picture | PanelGrid


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Document:
    title: str
    subtitle: str
    sections: list[Section] = field(default_factory=list)
