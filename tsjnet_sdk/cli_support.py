"""Running one ``tsjnet`` sub-command as a ``python -m ...`` module: the old entry points are thin
wrappers of the typer commands, so every command parses its arguments one way (typer) and the help,
errors and exit codes are the same either way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import typer


def run_command(command: Callable[..., Any], argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run the typer ``command`` on ``argv`` (default: the command line of the process); returns the exit code."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(command)
    try:
        app(args=list(argv) if argv is not None else None, prog_name=prog)
    except SystemExit as e:  # click ends with SystemExit(code) in standalone mode
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


def error_line(console: Any, message: object, label: str = "error", style: str = "red") -> None:
    """Print ``label: message`` to ``console`` (a rich Console) with the label styled and the message verbatim.

    The message is escaped: rich would read ``tsjnet-sdk[export]`` in an install hint as markup and print
    ``tsjnet-sdk``, which is the wrong fix. Every CLI error goes through here.
    """
    from rich.markup import escape

    console.print(f"[{style}]{label}:[/{style}] {escape(str(message))}", highlight=False)
