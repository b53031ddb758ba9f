"""Atomic file writes: every artefact the SDK writes (checkpoints, ONNX, engines, images, CSVs) goes
through :func:`atomic_path`, so a crash, a kill or an error never leaves a half-written file behind.

Contract (tested in tests/test_reliability_writes.py): while a writer runs, ``path`` holds the previous
file (or nothing); the new content takes the name in one ``os.replace`` after it is complete and
flushed to disk. A process killed mid-write (SIGKILL, power loss) can leave a hidden ``.NAME.*.tmp``
beside the target, never a partial ``NAME``. A full disk raises :class:`DiskFullError` (an OSError)
naming the file, and the previous file stays as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tsjnet_sdk.errors import TsjnetError

_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class DiskFullError(TsjnetError, OSError):
    """No space left (or quota/file-size limit) while writing a file; the previous file is intact."""


def _read_umask() -> int:
    mask = os.umask(0)  # the only portable way to read it: set and restore (once, at import)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _fsync(path: Path) -> None:
    # The data must be on disk before the rename: otherwise a power loss right after the rename can
    # leave an empty file under the final name (ext4 delayed allocation).
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _is_disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        return True
    # Writers implemented outside Python (safetensors' Rust, protobuf) report it in the message only.
    text = str(exc).lower()
    return "no space left on device" in text or "disk quota exceeded" in text


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename.

    On an exception the temporary file is removed and ``path`` is left as it was (a full disk is
    re-raised as :class:`DiskFullError` naming ``path``). The parent folder is created if needed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _fsync(tmp)
        # mkstemp creates 0600 (and some writers keep it): give the result the permissions a plain
        # open() would (0666 - umask) before it takes the final name.
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if _is_disk_full(e) and not isinstance(e, DiskFullError):
            raise DiskFullError(
                e.errno if isinstance(e, OSError) and e.errno else errno.ENOSPC,
                f"{path}: disk full while writing ({e}); nothing was written and the previous file (if any) is "
                "unchanged: free some space and retry",
            ) from e
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`); returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)
