"""A Document as a Markdown summary: its text and tables; plots and image grids are named, not embedded."""

from __future__ import annotations

from .document import Block, Document, PanelGrid, Picture, Table, Text


def _escape(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def _table(table: Table) -> str:
    lines = [f"| {' | '.join(_escape(c) for c in table.columns)} |", f"|{' --- |' * len(table.columns)}"]
    lines += [f"| {' | '.join(_escape(v) for v in row)} |" for row in table.rows]
    caption = f"{table.caption}\n\n" if table.caption else ""
    return caption + "\n".join(lines)


def _block(block: Block, html_name: str) -> str:
    if isinstance(block, Text):
        return block.text
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Picture):
        return f"_Plot in {html_name}: {block.caption}_"
    assert isinstance(block, PanelGrid)
    return f"_Images in {html_name}: {block.caption}_"


def render_markdown(document: Document, html_name: str) -> str:
    parts = [f"# {document.title}", document.subtitle]
    for section in document.sections:
        parts.append(f"## {section.title}")
        parts += [_block(b, html_name) for b in section.blocks]
    return "\n\n".join(parts) + "\n"
