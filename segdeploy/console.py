"""The console the CLI prints to, and document Tables (segdeploy/look/tables.py) rendered for it."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from .look.document import Table, is_number

console = Console()
if not console.is_terminal:  # logs and pipes: wide tables stay whole instead of folding at 80 columns
    console.width = max(console.width, 180)

_STATUS = {"pass": "green", "FAIL": "red"}


def _cell(value: str) -> str:
    colour = next((c for status, c in _STATUS.items() if value.startswith(status)), None)
    return escape(value) if colour is None else f"[{colour}]{escape(value)}[/]"


def rich_table(table: Table) -> RichTable:
    """The table with its caption as title, figures right-aligned, pass green and FAIL red."""
    shown = RichTable(title=escape(table.caption) or None)
    for index, column in enumerate(table.columns):
        figures = [row[index] for row in table.rows if row[index] != "-"]
        numeric = bool(figures) and all(is_number(v) for v in figures)
        shown.add_column(escape(column), justify="right" if numeric else "left")
    for row in table.rows:
        shown.add_row(*(_cell(v) for v in row))
    return shown


def show(table: Table) -> None:
    console.print(rich_table(table))
