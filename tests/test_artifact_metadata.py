"""The model-file metadata schema: one definition, written as ONNX props or an engine header, read back typed."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tsjnet_sdk.artifact_metadata import ArtifactMetadata, ArtifactMetadataError
from tsjnet_sdk.engine_format import write_engine_file
from tsjnet_sdk.runtime import ModelFileError, inspect_artifact

META = ArtifactMetadata(
    sdk_version="0.1.0",
    config_name="tsjnet-tiny",
    config={"name": "tsjnet-tiny", "dim": 8},
    input_convention="ir: [N,1,H,W] in [0,1]",
    colour="luminance only",
    na_mode="decomposed",
    precision="fp16",
    kept_float32=("softmax", "layer_norm"),
    shapes="1x1x64x96",
    source_checkpoint_sha256="a" * 64,
    opset=18,
)


def test_props_and_header_round_trip_typed() -> None:
    props = META.to_props()
    assert all(isinstance(v, str) for v in props.values())
    assert props["kept_float32"] == "softmax,layer_norm" and props["opset"] == "18"
    back = ArtifactMetadata.from_props({f"tsjnet.{k}": v for k, v in props.items()} | {"other.tool": "x"})
    assert back == META and back.config["dim"] == 8 and back.opset == 18
    engine = ArtifactMetadata(**{**META.__dict__, "extra": {}})
    engine.profile, engine.strongly_typed, engine.na_plugin = (
        {"min": [1, 1, 64, 96]},
        True,
        {"implementation": "library", "library": "libtsjnet_na2d_trt.so", "library_sha256": "b" * 64},
    )
    header = engine.to_header()
    assert header["kept_float32"] == ["softmax", "layer_norm"] and header["strongly_typed"] is True
    assert ArtifactMetadata.from_header(header) == engine


def test_old_onnx_files_stay_readable() -> None:
    old = {
        "tsjnet.inputs": "ir: infrared ...",
        "tsjnet.kept_float32": "all",
        "tsjnet.precision": "fp32",
        "tsjnet.config": '{"name": "tsjnet"}',
        "tsjnet.future_key": "kept",
    }
    meta = ArtifactMetadata.from_props(old)
    assert meta.input_convention == "ir: infrared ..." and meta.kept_float32 == () and meta.inputs is None
    assert meta.extra == {"future_key": "kept"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"config": "{not json"}, "key 'config' should be JSON"),
        ({"config": "[1, 2]"}, "key 'config' should be a JSON object"),
        ({"opset": "eighteen"}, "key 'opset' should be a whole number"),
        ({"na_mode": "magic"}, "na_mode 'magic' is not one of decomposed, plugin"),
        ({"precision": "fp8"}, "precision 'fp8' is not one of"),
    ],
)
def test_malformed_values_are_named(raw: dict[str, str], message: str) -> None:
    with pytest.raises(ArtifactMetadataError, match=message):
        ArtifactMetadata.from_props(raw, "m.onnx")
    with pytest.raises(ArtifactMetadataError, match="should be true or false"):
        ArtifactMetadata.from_header({"strongly_typed": "yes"})


def test_engine_header_is_read_typed_by_info(tmp_path: Path) -> None:
    header = META.to_header() | {"trt_flavour": "tensorrt", "profile": {"min": [1, 1, 64, 96]}}
    path = write_engine_file(tmp_path / "m.engine", header, b"engine-bytes")
    info = inspect_artifact(path)
    assert info.typed.profile == {"min": [1, 1, 64, 96]} and info.typed.kept_float32 == ("softmax", "layer_norm")
    assert info.config_name == "tsjnet-tiny" and info.metadata["engine_bytes"] == len(b"engine-bytes")
    from tsjnet_sdk.cli import app

    result = CliRunner().invoke(app, ["info", str(path)])
    assert result.exit_code == 0 and "tsjnet-tiny" in result.output and "softmax" in result.output
    bad = write_engine_file(tmp_path / "bad.engine", {"profile": "wide"}, b"x")
    with pytest.raises(ModelFileError, match="key 'profile' should be"):
        inspect_artifact(bad)
