"""Which TensorRT implementation of ``tsjnet::NeighborhoodAttention2D`` a build or a run uses, and the
compiled plugin library's location, hash and loading. Imports nothing heavy (no TensorRT at import).

Two implementations of the same node contract (tsjnet_sdk/na_node.py):

* ``library``: the compiled IPluginV3 library (kernels/na2d_trt_plugin.cpp, built by ``tsjnet build-plugin``),
  TensorRT >= 10.0, so JetPack 6.1/6.2 (TensorRT 10.3) too. The engine references the plugin by name:
  the same library must be loaded before the engine is deserialised, so the engine header records its
  SHA-256 and the runtime checks it.
* ``qdp``: the ahead-of-time Python plugin (kernels/trt_plugin.py, TensorRT >= 10.9). It embeds the
  kernel's PTX in the engine, so the engine runs with no library file and no compiler on the
  deployment machine. Kept for that reason, where it is available and no library is asked for.

:func:`choose_plugin` is the one place that decides: a library given explicitly (``--plugin-lib`` /
``plugin_library=``) or through ``$TSJNET_TRT_PLUGIN`` wins; otherwise TensorRT >= 10.9 uses the QDP
and TensorRT 10.0-10.8 uses the library at its default location (kernels/build_plugin.py's
``default_library_path``); TensorRT < 10.0 (JetPack 6.0: 8.6) has neither.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tsjnet_sdk import na_node
from tsjnet_sdk.hashing import file_sha256
from tsjnet_sdk.kernels.trt_plugin import MIN_TENSORRT as QDP_MIN_TENSORRT
from tsjnet_sdk.kernels.trt_plugin import PluginUnavailable

LIBRARY_MIN_TENSORRT = (10, 0)
PLUGIN_VERSION = "1"
BUILD_HINT = "build it with `tsjnet build-plugin` (docs/jetson.md)"

# Libraries this process has handed to TensorRT's plugin registry: resolved path -> sha256.
_loaded: dict[str, str] = {}


@dataclass(frozen=True)
class PluginChoice:
    """``implementation`` is ``"library"`` (then ``library`` and ``sha256`` are set) or ``"qdp"``."""

    implementation: str
    library: Path | None = None
    sha256: str | None = None

    def header(self) -> dict[str, Any]:
        """What the engine header records about the plugin (engine_format.py: ``na_plugin``)."""
        if self.implementation == "qdp":
            return {"implementation": "qdp"}
        return {
            "implementation": "library",
            "library": self.library.name if self.library else None,
            "library_sha256": self.sha256,
        }


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", version)[:2])


def given_library(explicit: str | os.PathLike | None = None) -> tuple[Path, str] | None:
    """(path, where it came from) of a library asked for explicitly or through ``$TSJNET_TRT_PLUGIN``; None if neither."""
    if explicit:
        return Path(explicit).expanduser(), "the given plugin library"
    if os.environ.get("TSJNET_TRT_PLUGIN"):
        return Path(os.environ["TSJNET_TRT_PLUGIN"]).expanduser(), "$TSJNET_TRT_PLUGIN"
    return None


def _existing(path: Path, origin: str) -> Path:
    if not path.is_file():
        raise PluginUnavailable(f"{origin} {path} does not exist: {BUILD_HINT}, or point to the built .so")
    return path


def choose_plugin(trt_version: str, library: str | os.PathLike | None = None) -> PluginChoice:
    """The implementation for an engine build with TensorRT ``trt_version`` (see the module docstring).

    Raises:
        PluginUnavailable: TensorRT < 10.0, or the needed library does not exist (says how to build it).
    """
    version = _version_tuple(trt_version)
    if version < LIBRARY_MIN_TENSORRT:
        raise PluginUnavailable(
            f"TensorRT {trt_version} is older than 10.0, which the NeighborhoodAttention2D plugin (IPluginV3) needs "
            "(JetPack 6.0 ships 8.6: use JetPack 6.1+); export with --na decomposed for this TensorRT"
        )
    given = given_library(library)
    if given is not None:
        path = _existing(*given)
        return PluginChoice("library", path.resolve(), file_sha256(path))
    if version >= QDP_MIN_TENSORRT:
        return PluginChoice("qdp")
    from tsjnet_sdk.kernels.build_plugin import default_library_path

    path = _existing(
        default_library_path(),
        f"TensorRT {trt_version} has no ahead-of-time Python plugins (10.9+), so "
        "--na plugin needs the compiled plugin library, and",
    )
    return PluginChoice("library", path.resolve(), file_sha256(path))


def runtime_library(header_plugin: dict[str, Any] | None, library: str | os.PathLike | None = None) -> Path:
    """The library to load for an engine whose header records ``header_plugin`` (``implementation: library``).

    The given library (argument or ``$TSJNET_TRT_PLUGIN``), else the default location; its SHA-256 must be
    the one recorded at build time.

    Raises:
        PluginUnavailable: missing library, or a different build of it (both hashes named).
    """
    from tsjnet_sdk.kernels.build_plugin import default_library_path

    given = given_library(library)
    path = (
        _existing(*given)
        if given
        else _existing(default_library_path(), "the engine uses the compiled NeighborhoodAttention2D plugin library; the library")
    )
    wanted = (header_plugin or {}).get("library_sha256")
    have = file_sha256(path)
    if wanted and have != wanted:
        raise PluginUnavailable(
            f"plugin library {path} (sha256 {have[:12]}...) is not the one the engine was built with (sha256 "
            f"{wanted[:12]}..., {header_plugin.get('library')}): load that library (plugin_library= or "
            "$TSJNET_TRT_PLUGIN), or rebuild the engine with this one"
        )
    return path


def load_library(trt: Any, path: str | os.PathLike) -> None:
    """Register the library's creators with TensorRT's plugin registry (once per process and path).

    Raises:
        PluginUnavailable: TensorRT refused the library (not a plugin library, built for another
            architecture, or the plugin is already registered, e.g. by the QDP in this process).
    """
    path = Path(path).resolve()
    if str(path) in _loaded:
        return
    registry = trt.get_plugin_registry()
    try:
        handle = registry.load_library(str(path))
    except Exception as e:  # noqa: BLE001 (the Python binding raises on some versions, returns None on others)
        handle, reason = None, f": {e}"
    else:
        reason = ""
    if handle is None:
        raise PluginUnavailable(
            f"TensorRT could not load the plugin library {path}{reason} (another build of "
            f"{na_node.QUALIFIED_NAME} already registered in this process, a library built for another CPU "
            f"architecture, or not a plugin library): {BUILD_HINT} on this machine"
        )
    _loaded[str(path)] = file_sha256(path)
