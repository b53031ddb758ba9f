"""Running one ``tsjnet`` sub-command as a ``python -m ...`` module: the old entry points are thin
wrappers of the typer commands, so every command parses its arguments one way (typer) and the help,
errors and exit codes are the same either way."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import typer


def run_command(command: Callable[..., Any], argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run the typer ``command`` on ``argv`` (default: the command line of the process); returns the exit code."""
    from rich.console import Console

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(command)
    try:
        run_app(lambda: app(args=list(argv) if argv is not None else None, prog_name=prog), Console(stderr=True))
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


#: Optional packages -> the install that brings them (pyproject's extras), for one-line "missing extra" errors.
EXTRA_OF_MODULE = {
    "torch": "pip install 'tsjnet-sdk[torch]'",
    "torchvision": "pip install 'tsjnet-sdk[torch]'",
    "safetensors": "pip install 'tsjnet-sdk[torch]'",
    "onnxruntime": "pip install 'tsjnet-sdk[onnx]'",
    "onnx": "pip install 'tsjnet-sdk[export]'",
    "onnxscript": "pip install 'tsjnet-sdk[export]'",
    "onnxslim": "pip install 'tsjnet-sdk[export]'",
    "onnxruntime_extensions": "pip install 'tsjnet-sdk[export]'",
    "pytorch_msssim": "pip install 'tsjnet-sdk[train]'",
    "cuda": "pip install 'tsjnet-sdk[cuda]'",
    "tensorrt": "install TensorRT (JetPack's python3-libnvinfer, or pip install tensorrt)",
    "tensorrt_rtx": "pip install 'tsjnet-sdk[tensorrt-rtx]'",
    "natten": "pip install 'tsjnet-sdk[natten]'",
    "cv2": "pip install 'tsjnet-sdk[video]'",
    "pytest": "pip install 'tsjnet-sdk[dev]'",
}


def missing_extra_message(error: ImportError) -> str | None:
    """One line naming the missing optional package and the install that brings it; None for other import errors."""
    top = (error.name or "").split(".")[0]
    if top not in EXTRA_OF_MODULE:
        return None
    return f"this command needs {top}, which is not installed: {EXTRA_OF_MODULE[top]}"


def run_app(app: Callable[..., Any], console: Any) -> None:
    """Run a typer app (the ``tsjnet`` entry point); a missing optional package ends in one line, exit 2."""
    try:
        app()
    except ImportError as e:
        from tsjnet_sdk.errors import TsjnetError

        # the SDK's own MissingExtraError already names the install; a bare ImportError is mapped to its extra
        message = str(e) if isinstance(e, TsjnetError) else missing_extra_message(e)
        if message is None:
            raise
        error_line(console, message)
        raise SystemExit(2) from None
