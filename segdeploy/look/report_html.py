"""A Document as one self-contained HTML page: inline CSS, every image a data: URI, no scripts."""

from __future__ import annotations

import base64
from html import escape

from .document import Block, Document, PanelGrid, Picture, Table, Text, is_number

_STYLE = """
body { font-family: system-ui, sans-serif; color: #222; margin: 2em auto; padding: 0 1em; }
body { max-width: 1400px; box-sizing: border-box; }
h1 { margin-bottom: 0.2em; } .subtitle { color: #666; margin-top: 0; }
h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 1em 0; } figcaption { color: #555; font-size: 0.85em; }
img.plot { max-width: 100%; }
table.grid { table-layout: fixed; width: 100%; }
table.grid th:first-child { width: 3em; }
table.grid td { border: none; padding: 2px; text-align: center; font-size: 0.8em; }
table.grid img { width: 100%; image-rendering: pixelated; transition: transform 0.1s; }
table.grid img:hover { transform: scale(2.5); position: relative; z-index: 2; box-shadow: 0 0 8px #0008; }
table.grid th { background: none; border: none; text-align: center; }
"""


def _uri(picture: Picture) -> str:
    return f"data:{picture.mime};base64,{base64.b64encode(picture.data).decode('ascii')}"


def _img(picture: Picture, css: str) -> str:
    return (
        f'<img class="{css}" src="{_uri(picture)}" alt="{escape(picture.caption)}" title="{escape(picture.caption)}">'
    )


def _cell(value: str) -> str:
    css = ' class="num"' if is_number(value) else ""
    return f"<td{css}>{escape(value)}</td>"


def _table(table: Table) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in table.columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in table.rows)
    caption = f"<caption>{escape(table.caption)}</caption>" if table.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _grid(grid: PanelGrid) -> str:
    head = "<tr><th></th>" + "".join(f"<th>{escape(c)}</th>" for c in grid.columns) + "</tr>"
    rows = []
    for label, pictures in grid.rows:
        cells = "".join(
            "<td></td>" if p is None else f"<td>{_img(p, 'panel')}<br>{escape(p.caption)}</td>" for p in pictures
        )
        rows.append(f"<tr><th>{escape(label)}</th>{cells}</tr>")
    caption = f"<figcaption>{escape(grid.caption)}</figcaption>" if grid.caption else ""
    return f'<figure><table class="grid">{head}{"".join(rows)}</table>{caption}</figure>'


def _block(block: Block) -> str:
    if isinstance(block, Text):
        return f"<p>{escape(block.text)}</p>"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Picture):
        return f"<figure>{_img(block, 'plot')}<figcaption>{escape(block.caption)}</figcaption></figure>"
    return _grid(block)


def render_html(document: Document) -> str:
    sections = "".join(
        f"<section><h2>{escape(s.title)}</h2>{''.join(_block(b) for b in s.blocks)}</section>"
        for s in document.sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(document.title)}</title><style>{_STYLE}</style></head><body>"
        f'<h1>{escape(document.title)}</h1><p class="subtitle">{escape(document.subtitle)}</p>'
        f"{sections}</body></html>\n"
    )
