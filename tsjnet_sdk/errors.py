"""The one base of every error the SDK raises on purpose: ``except TsjnetError`` catches any of them.

Each specific class also keeps the built-in base it always had (ValueError for bad input or files,
RuntimeError for a step that cannot run here, OSError for a full disk), so existing ``except ValueError``
code keeps working. Imports nothing.
"""

from __future__ import annotations


class TsjnetError(Exception):
    """Base of all tsjnet-sdk errors (ImageError, ModelFileError, BackendUnavailable, ExportError, ...)."""
