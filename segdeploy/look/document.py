"""A report as plain data: sections of text, tables, plots and image grids, rendered to HTML or Markdown."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Table:
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""


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
