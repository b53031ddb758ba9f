"""Fuzz harnesses for every parser of untrusted input. Each takes arbitrary bytes and either returns or
raises one of the SDK's documented error types (caught here); any other exception, a hang or a crash
is a bug. Run coverage-guided with atheris (tests/fuzz/run_atheris.py) or as a deterministic mutation
loop over the seed corpus (tests/test_fuzz_smoke.py).

Harnesses (seed corpus in tests/fuzz/corpus/<name>/):
  engine_header     tsjnet engine file header (engine_format.read_engine_header / read_engine_file)
  onnx_metadata     what `tsjnet info` does with an .onnx file (runtime.inspect_artifact)
  checkpoint        checkpoint metadata and config (read_checkpoint_metadata, checkpoint_config, inspect_artifact)
  image             image files of every listed format, named by their content (imaging.read_image, 4 Mpx
                    limit); one input in 8 gets another listed suffix (the suffix/content check)
  jpeg              JPEGs only: the completeness check (imaging.check_jpeg_complete: marker walk, scan
                    coverage, padding re-decode) on files that Pillow decodes without error
  tiff_wide         TIFFs with float / 32-bit / 16-bit samples, range tags, orientation, several pages
                    (imaging.pil_to_array's scaling and refusals)
  ort_cache         an ONNX Runtime optimised-graph cache file holding arbitrary bytes, with a record that
                    vouches for them: the Fuser must run the true model or rebuild, never the bytes' graph
  pairing           pairing of IR / visible folders by file name (tsjnet_sdk.pairing.pair_folders)
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

_WORK = Path(tempfile.mkdtemp(prefix="tsjnet-fuzz-"))


def _file(data: bytes, name: str) -> Path:
    path = _WORK / name
    path.write_bytes(data)
    return path


def engine_header(data: bytes) -> None:
    from tsjnet_sdk.engine_format import EngineFileError, read_engine_file, read_engine_header

    path = _file(data, "model.engine")
    try:
        meta = read_engine_header(path)
        assert isinstance(meta, dict) and meta["engine_bytes"] > 0
        meta2, engine = read_engine_file(path)
        assert len(engine) == meta["engine_bytes"]
    except EngineFileError:
        pass


def onnx_metadata(data: bytes) -> None:
    from tsjnet_sdk.runtime.artifacts import ModelFileError, inspect_artifact

    path = _file(data, "model.onnx")
    try:
        info = inspect_artifact(path)
        str(info.config_name)
    except ModelFileError:
        pass
    except ValueError as e:  # CheckpointError / EngineFileError: the bytes looked like another kind
        _documented(e)


def checkpoint(data: bytes) -> None:
    from tsjnet_sdk.models.checkpoint import CheckpointError, checkpoint_config, read_checkpoint_metadata
    from tsjnet_sdk.runtime.artifacts import ModelFileError, inspect_artifact

    path = _file(data, "model.safetensors")
    try:
        read_checkpoint_metadata(path)
        checkpoint_config(path)
    except CheckpointError:
        pass
    try:
        str(inspect_artifact(path).config_name)
    except (ModelFileError, CheckpointError):
        pass
    except ValueError as e:
        _documented(e)


# Content magic -> the suffix that names it, so mutants reach the decoder of their content.
_MAGIC = ((b"\x89PNG", ".png"), (b"\xff\xd8", ".jpg"), (b"BM", ".bmp"), (b"II*\x00", ".tif"), (b"MM\x00*", ".tif"))
_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def _read_checked(path: Path) -> None:
    """read_image must return uint8/uint16 H x W or H x W x 3, or raise ImageError; nothing else."""
    from tsjnet_sdk.imaging import ImageError, read_image

    try:
        arr = read_image(path, max_pixels=1 << 22)
        assert arr.dtype.name in ("uint8", "uint16") and arr.ndim in (2, 3), (arr.dtype, arr.shape)
        assert arr.ndim == 2 or arr.shape[2] == 3
    except ImageError:
        pass


def image(data: bytes) -> None:
    suffix = next((s for magic, s in _MAGIC if data.startswith(magic)), ".png")
    if len(data) % 8 == 7:  # now and then, a listed suffix that disagrees with the content
        suffix = _SUFFIXES[len(data) % len(_SUFFIXES)]
    _read_checked(_file(data, "frame" + suffix))


def jpeg(data: bytes) -> None:
    from tsjnet_sdk.imaging import ImageError, check_jpeg_complete

    try:
        check_jpeg_complete(data, "fuzz.jpg")  # alone: any bytes, also ones Pillow would refuse first
    except ImageError:
        pass
    except Exception as e:  # noqa: BLE001 - Pillow's own decode errors are read_image's to wrap (below)
        if not isinstance(e, (OSError, SyntaxError, ValueError, EOFError)):
            raise
    _read_checked(_file(data, "frame.jpg"))


def tiff_wide(data: bytes) -> None:
    _read_checked(_file(data, "frame.tif"))


_ORT_MODELS: dict[str, Path] = {}


def ort_cache(data: bytes) -> None:
    import hashlib
    import json

    import numpy as np

    from tsjnet_sdk import Fuser
    from tsjnet_sdk.runtime import BackendUnavailable, ModelFileError, ModelOutputError, OrtOptions
    from tsjnet_sdk.runtime.backends.onnxruntime_backend import optimized_model

    if not _ORT_MODELS:
        _ORT_MODELS["mean"] = _mean_model(_WORK / "mean.onnx")
    model, cache = _ORT_MODELS["mean"], _WORK / "ort_cache"
    options = OrtOptions(optimized_model_cache=cache, intra_op_threads=1)
    graph, source_sha = optimized_model(model, options, ["CPUExecutionProvider"])
    graph.write_bytes(data)  # the cache now holds the fuzzer's bytes, and its record vouches for them
    record = graph.with_suffix(".json")
    record.write_text(json.dumps({"source_sha256": source_sha, "cache_sha256": hashlib.sha256(data).hexdigest()}))
    frame = np.arange(32 * 32, dtype=np.uint8).reshape(32, 32)
    try:
        out = Fuser(model, options=options, gray=True)(frame, frame)
    except (BackendUnavailable, ModelFileError, ModelOutputError):
        return
    # With a forged record, only the source hash inside the graph stands between these bytes and the
    # Fuser: bytes without it must have been rebuilt. (Bytes that keep it and change the graph would
    # need a forged record and a forged graph: out of scope, the record's graph hash catches accidents.)
    if source_sha.encode() not in data:
        assert np.array_equal(out, frame), "a cached graph other than the model's own ran"


def _mean_model(path: Path) -> Path:
    from onnx import TensorProto, helper, save

    shape = ["N", 1, "H", "W"]
    graph = helper.make_graph(
        [helper.make_node("Add", ["ir", "vis"], ["sum"]), helper.make_node("Mul", ["sum", "half"], ["fused"])],
        "mean",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape) for n in ("ir", "vis")],
        [helper.make_tensor_value_info("fused", TensorProto.FLOAT, shape)],
        [helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    for key, value in {"tsjnet.sdk_version": "0.1.0", "tsjnet.config_name": "fuzz-mean"}.items():
        model.metadata_props.add(key=key, value=value)
    save(model, path)
    return path


def pairing(data: bytes) -> None:
    """Names from the data (split at b'\\n'; bytes 0x80+ as latin-1) go into an IR and a visible folder."""
    import shutil

    from tsjnet_sdk.pairing import PairingError, pair_folders

    root = _WORK / "pairing"
    shutil.rmtree(root, ignore_errors=True)
    ir_dir, vis_dir = root / "ir", root / "vis"
    ir_dir.mkdir(parents=True)
    vis_dir.mkdir()
    created = {ir_dir: set(), vis_dir: set()}
    for i, raw in enumerate(data.split(b"\n")[:64]):
        name = raw.decode("latin-1").replace("/", "_").replace("\x00", "_")[:200]
        if name in ("", ".", ".."):
            continue
        folder = ir_dir if i % 2 == 0 else vis_dir
        try:
            (folder / name).write_bytes(b"")
        except OSError:  # a name the file system refuses: not the SDK's business
            continue
        created[folder].add(name)
    try:
        matched = pair_folders(ir_dir, vis_dir)
    except PairingError:  # documented: two images of one folder share a name (a.png, a.jpg)
        return
    names = [row[0] for row in matched.rows]
    assert len(names) == len(set(names))
    for name, ir, vis in matched.rows:
        assert ir.parent == ir_dir and vis.parent == vis_dir and ir.stem == vis.stem == name
        assert ir.name in created[ir_dir] and vis.name in created[vis_dir]
    assert not set(names) & {stem for stems in matched.unmatched for stem in stems}


def _documented(e: Exception) -> None:
    """Re-raise ``e`` unless it is one of the SDK's documented error types."""
    from tsjnet_sdk.engine_format import EngineFileError
    from tsjnet_sdk.models.checkpoint import CheckpointError
    from tsjnet_sdk.runtime.artifacts import ModelFileError

    if not isinstance(e, (EngineFileError, CheckpointError, ModelFileError)):
        raise e


HARNESSES: dict[str, Callable[[bytes], None]] = {
    "engine_header": engine_header,
    "onnx_metadata": onnx_metadata,
    "checkpoint": checkpoint,
    "image": image,
    "jpeg": jpeg,
    "tiff_wide": tiff_wide,
    "ort_cache": ort_cache,
    "pairing": pairing,
}
CORPUS = Path(__file__).resolve().parent / "corpus"


def seeds(name: str) -> list[bytes]:
    """The seed corpus of a harness, sorted by file name."""
    return [p.read_bytes() for p in sorted((CORPUS / name).iterdir()) if p.is_file()]


def mutate(data: bytes, rng) -> bytes:
    """One random structural mutation (the deterministic fallback when atheris is absent)."""
    buf = bytearray(data)
    op = rng.integers(0, 7)
    if not buf or op == 0:  # insert random bytes
        at = int(rng.integers(0, len(buf) + 1))
        buf[at:at] = rng.integers(0, 256, int(rng.integers(1, 9)), dtype="uint8").tobytes()
    elif op == 1:  # flip bits
        for _ in range(int(rng.integers(1, 5))):
            at = int(rng.integers(0, len(buf)))
            buf[at] ^= 1 << int(rng.integers(0, 8))
    elif op == 2:  # truncate
        del buf[int(rng.integers(0, len(buf))) :]
    elif op == 3:  # interesting bytes
        at = int(rng.integers(0, len(buf)))
        buf[at] = int(rng.choice([0, 1, 0x7F, 0x80, 0xFF]))
    elif op == 4:  # interesting 32-bit integers (sizes, lengths)
        at = int(rng.integers(0, len(buf)))
        value = int(rng.choice([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 100_000, 65536]))
        buf[at : at + 4] = value.to_bytes(4, "little" if rng.integers(0, 2) else "big")
    elif op == 5:  # duplicate a chunk
        a = int(rng.integers(0, len(buf)))
        b = min(len(buf), a + int(rng.integers(1, 64)))
        buf[b:b] = buf[a:b]
    else:  # delete a chunk
        a = int(rng.integers(0, len(buf)))
        del buf[a : a + int(rng.integers(1, 16))]
    return bytes(buf)


def mutation_loop(name: str, iterations: int, seed: int = 0) -> int:
    """Run harness ``name`` on its seeds and ``iterations`` mutants (1-3 stacked mutations each)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    harness, corpus = HARNESSES[name], seeds(name)
    for data in corpus:
        harness(data)
    for _ in range(iterations):
        data = corpus[int(rng.integers(0, len(corpus)))]
        for _ in range(int(rng.integers(1, 4))):
            data = mutate(data, rng)
        harness(data)
    return len(corpus) + iterations
