"""Where the command writes: data on stdout, messages and progress on stderr, each one line."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape

# Wide enough that tables piped into a file or a test keep their cells whole.
_PIPE_WIDTH = 200


def out() -> Console:
    """stdout, for results."""
    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else _PIPE_WIDTH, highlight=False)


def err() -> Console:
    """stderr, for messages and progress bars."""
    return Console(file=sys.stderr, width=None if sys.stderr.isatty() else _PIPE_WIDTH, highlight=False)


def error(message: str) -> None:
    err().print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)


def warn(message: str) -> None:
    err().print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


def note(message: str) -> None:
    err().print(escape(message), soft_wrap=True)
