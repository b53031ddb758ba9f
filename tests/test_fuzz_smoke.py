"""Fuzz smoke: every harness in tests/fuzz/harnesses.py over its seed corpus plus a few hundred
deterministic mutants (the long coverage-guided runs are recorded in docs/reliability.md), the
defects fuzzing found (each a regression test), and a short atheris run when atheris is installed."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

FUZZ = Path(__file__).resolve().parent / "fuzz"
sys.path.insert(0, str(FUZZ))

import harnesses  # noqa: E402

ITERATIONS = {
    "engine_header": 400,
    "onnx_metadata": 200,
    "checkpoint": 400,
    "image": 400,
    "jpeg": 300,
    "tiff_wide": 300,
    "ort_cache": 60,
    "pairing": 150,
}


@pytest.mark.parametrize("name", sorted(harnesses.HARNESSES))
def test_harness_survives_mutants(name):
    assert len(harnesses.seeds(name)) >= 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert harnesses.mutation_loop(name, ITERATIONS[name], seed=0) > ITERATIONS[name]


def test_mutations_are_deterministic_and_change_data():
    data = harnesses.seeds("engine_header")[0]
    a = [harnesses.mutate(data, np.random.default_rng(3)) for _ in range(1)]
    b = [harnesses.mutate(data, np.random.default_rng(3)) for _ in range(1)]
    assert a == b
    rng = np.random.default_rng(0)
    assert sum(harnesses.mutate(data, rng) != data for _ in range(50)) >= 45


# -- defects found by fuzzing (each failed before its fix) --------------------------------------------


def test_onnx_metadata_with_invalid_utf8_key_is_read(tmp_path):
    """Found by the onnx_metadata harness: protobuf returns bytes for a non-UTF-8 metadata key, and
    read_onnx_metadata crashed with TypeError (tsjnet info died with a traceback)."""
    from tsjnet_sdk.runtime.artifacts import inspect_artifact

    data = harnesses.seeds("onnx_metadata")[0].replace(b"tsjnet.config\x12", b"tsjnet.c\xffnfig\x12")
    assert b"c\xffnfig" in data
    path = tmp_path / "bad_key.onnx"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = inspect_artifact(path)
    assert info.metadata["config_name"] == "tsjnet-tiny"
    assert "c\ufffdnfig" in info.metadata


def test_float_tiff_with_nan_is_refused(tmp_path):
    """Found by the image harness: an F-mode TIFF holding NaN passed the range check (NaN compares
    false) and was cast to garbage uint16 pixels."""
    from PIL import Image

    from tsjnet_sdk.imaging import ImageError, read_image

    values = np.full((8, 8), 100.0, np.float32)
    values[2, 3] = np.nan
    Image.fromarray(values).save(tmp_path / "nan.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value encountered in cast" either
        with pytest.raises(ImageError, match="NaN or inf"):
            read_image(tmp_path / "nan.tif")


def test_every_decoder_failure_is_an_image_error(tmp_path):
    """Pillow raises more than OSError for corrupt files (ValueError, struct.error, EOFError, ...);
    read_image must turn all of them into ImageError."""
    from tsjnet_sdk.imaging import ImageError, read_image

    rng = np.random.default_rng(0)
    seeds = harnesses.seeds("image")
    for i in range(300):
        data = seeds[i % len(seeds)]
        for _ in range(3):
            data = harnesses.mutate(data, rng)
        path = tmp_path / f"m{i % 4}.png"
        path.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                read_image(path)
            except ImageError:
                pass  # the only exception allowed


@pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris not installed (pip install atheris)")
@pytest.mark.parametrize("name", ["engine_header", "image"])
def test_atheris_smoke(name, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FUZZ.parents[1]), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, str(FUZZ / "run_atheris.py"), name, "-runs=300", "-seed=1", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done 300 runs" in proc.stderr


def test_onnx_with_non_utf8_dimension_name_is_a_clear_error(tmp_path):
    """Found by the ort_cache harness: ONNX Runtime decodes dimension names as UTF-8 only when they are
    read, and a corrupt name crashed the Fuser's I/O check with UnicodeDecodeError."""
    from conftest import mean_onnx_model

    from tsjnet_sdk import Fuser
    from tsjnet_sdk.runtime import BackendUnavailable

    path = mean_onnx_model(tmp_path / "mean.onnx", ["N", 1, "H", "W"])
    data = path.read_bytes()
    assert data.count(b"\x12\x01H") >= 1  # Dimension.dim_param (field 2), length 1, "H"
    path.write_bytes(data.replace(b"\x12\x01H", b"\x12\x01\xbd"))
    with pytest.raises(BackendUnavailable, match="cannot read the graph's inputs and outputs"):
        Fuser(path)
