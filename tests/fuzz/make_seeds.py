"""Regenerate the seed corpus in tests/fuzz/corpus/ (small, valid examples of each input kind):

PYTHONPATH=. python tests/fuzz/make_seeds.py
"""

from __future__ import annotations

import io
import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
CORPUS = Path(__file__).resolve().parent / "corpus"


def _write(kind: str, name: str, data: bytes) -> None:
    folder = CORPUS / kind
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)


def png_header_only(width: int, height: int, bit_depth: int = 8, colour: int = 0) -> bytes:
    """A PNG whose IHDR claims W x H but whose IDAT holds one row: the hostile-size test file."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 9)) + chunk(b"IEND", b"")


def engines() -> None:
    from tsjnet_sdk.engine_format import write_engine_file

    meta = {
        "sdk_version": "0.1.0",
        "config_name": "tsjnet-tiny",
        "trt_flavour": "tensorrt_rtx",
        "trt_version": "1.7.1",
        "precision": "fp16",
        "na_mode": "plugin",
        "profile": {"min": [1, 1, 32, 32], "opt": [1, 1, 64, 64], "max": [1, 1, 64, 64]},
    }
    path = CORPUS / "engine_header" / "valid.engine"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_engine_file(path, meta, b"\x7fENGINE" + bytes(range(64)))
    _write("engine_header", "empty_meta.engine", b"TSJNTRT\x00" + struct.pack("<II", 1, 2) + b"{}" + b"x")


def onnx_files() -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Max", ["ir", "vis"], ["fused"])],
        "tsjnet",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", 1, "H", "W"]) for n in ("ir", "vis")],
        [helper.make_tensor_value_info("fused", TensorProto.FLOAT, ["N", 1, "H", "W"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    for key, value in {
        "tsjnet.config_name": "tsjnet-tiny",
        "tsjnet.precision": "fp32",
        "tsjnet.config": json.dumps({"name": "tsjnet-tiny"}),
    }.items():
        model.metadata_props.add(key=key, value=value)
    _write("onnx_metadata", "tiny_graph.onnx", model.SerializeToString())


def checkpoints() -> None:
    from safetensors.numpy import save

    from tsjnet_sdk.models.config import get_config

    meta = {
        "format": "tsjnet-checkpoint",
        "format_version": "1",
        "sdk_version": "0.1.0",
        "config": get_config("tsjnet-tiny").to_json(),
    }
    _write("checkpoint", "tiny_meta.safetensors", save({"w": np.arange(4, dtype=np.float32)}, metadata=meta))
    _write("checkpoint", "not_tsjnet.safetensors", save({"w": np.zeros(2, np.float16)}, metadata={"format": "pt"}))


def images() -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (8, 8), dtype=np.uint8)
    rgb = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    wide = grey.astype(np.uint16) * 257
    cases = {
        "grey.png": (Image.fromarray(grey), "PNG"),
        "grey16.png": (Image.fromarray(wide), "PNG"),
        "rgb.png": (Image.fromarray(rgb), "PNG"),
        "rgba.png": (Image.fromarray(rgb).convert("RGBA"), "PNG"),
        "palette.png": (Image.fromarray(rgb).convert("P"), "PNG"),
        "la.png": (Image.fromarray(grey).convert("LA"), "PNG"),
        "bilevel.png": (Image.fromarray(grey).convert("1"), "PNG"),
        "rgb.jpg": (Image.fromarray(rgb), "JPEG"),
        "grey.jpg": (Image.fromarray(grey), "JPEG"),
        "cmyk.jpg": (Image.fromarray(rgb).convert("CMYK"), "JPEG"),
        "grey16.tif": (Image.fromarray(wide), "TIFF"),
        "float.tif": (Image.fromarray(grey.astype(np.float32) / 255), "TIFF"),
        "rgb.tif": (Image.fromarray(rgb), "TIFF"),
        "rgb.bmp": (Image.fromarray(rgb), "BMP"),
        "grey.bmp": (Image.fromarray(grey), "BMP"),
    }
    for name, (im, fmt) in cases.items():
        buf = io.BytesIO()
        im.save(buf, format=fmt)
        _write("image", name, buf.getvalue())
    _write("image", "huge_header.png", png_header_only(100_000, 100_000))


def jpegs() -> None:
    from PIL import Image

    y, x = np.mgrid[:48, :64]
    smooth = np.stack([x * 4, y * 5, (x + y) * 2], axis=-1).astype(np.uint8)
    cases = {
        "baseline.jpg": ({}, smooth),
        "progressive.jpg": ({"progressive": True}, smooth),
        "restart.jpg": ({"restart_marker_blocks": 2}, smooth),
        "grey.jpg": ({}, smooth[..., 0].copy()),
        "q100_444.jpg": ({"quality": 100, "subsampling": 0}, smooth),
    }
    for name, (kw, array) in cases.items():
        buf = io.BytesIO()
        Image.fromarray(array).save(buf, "JPEG", **kw)
        _write("jpeg", name, buf.getvalue())
        if name == "baseline.jpg":  # one cut short and closed with EOI: what the completeness check refuses
            _write("jpeg", "cut_with_eoi.jpg", buf.getvalue()[: len(buf.getvalue()) * 2 // 3] + b"\xff\xd9")


def wide_tiffs() -> None:
    from PIL import Image
    from PIL.TiffImagePlugin import ImageFileDirectory_v2

    grey = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    ranged = ImageFileDirectory_v2()
    ranged[340], ranged[341] = 0.0, 600.0
    ranged.tagtype[340] = ranged.tagtype[341] = 11
    rotated = Image.fromarray(grey).getexif()
    rotated[0x0112] = 6
    cases = {
        "float_unit.tif": (Image.fromarray(grey.astype(np.float32) / 255), {}),
        "float_ranged.tif": (Image.fromarray(grey.astype(np.float32) * 2), {"tiffinfo": ranged}),
        "int32_ranged.tif": (Image.fromarray(grey.astype(np.int32) * 16), {"tiffinfo": {280: 0, 281: 4095}}),
        "int32.tif": (Image.fromarray(grey.astype(np.int32)), {}),
        "uint16_rotated.tif": (Image.fromarray(grey.astype(np.uint16) * 257), {"exif": rotated}),
        "two_pages.tif": (Image.fromarray(grey), {"save_all": True, "append_images": [Image.fromarray(grey)]}),
    }
    for name, (im, kw) in cases.items():
        buf = io.BytesIO()
        im.save(buf, format="TIFF", **kw)
        _write("tiff_wide", name, buf.getvalue())


def ort_caches() -> None:
    """The mean model's real optimised graph (what the cache normally holds) and a few bytes."""
    import tempfile

    import harnesses

    from tsjnet_sdk.runtime import OrtOptions
    from tsjnet_sdk.runtime.backends.onnxruntime_backend import optimized_model

    with tempfile.TemporaryDirectory() as tmp:
        model = harnesses._mean_model(Path(tmp) / "mean.onnx")
        graph, _ = optimized_model(model, OrtOptions(optimized_model_cache=Path(tmp) / "c"), ["CPUExecutionProvider"])
        _write("ort_cache", "mean_optimised.onnx", graph.read_bytes())
    _write("ort_cache", "empty", b"")


def pairing() -> None:
    _write("pairing", "names.txt", b"00001.png\n00001.png\n00002.jpg\n00002.PNG\n003.tif\nx.txt\n.png\na.b.bmp\na.b.bmp\n")
    _write("pairing", "odd.txt", "caf\u00e9.png\ncaf\u00e9.png\n \n .png\nA.PNG\na.png\n".encode("latin-1"))


if __name__ == "__main__":
    engines()
    onnx_files()
    checkpoints()
    images()
    jpegs()
    wide_tiffs()
    ort_caches()
    pairing()
    print("\n".join(f"{p.relative_to(CORPUS)}  {p.stat().st_size} B" for p in sorted(CORPUS.rglob("*")) if p.is_file()))
