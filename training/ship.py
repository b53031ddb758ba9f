"""Turn a training run's checkpoint into the SDK's shipped weights (``tsjnet_sdk/weights/``).

    tsjnet ship outputs/train/edge/last.safetensors training/configs/edge.toml
    (or python -m tsjnet_sdk.training.ship ..., the same command)

Loads the checkpoint, stores its floating-point tensors as float16 (half the file; the model card
records what that costs: ``tsjnet_sdk/weights/README.md``) and adds provenance to the metadata: the
training config, the step, and the SHA-256 of the source checkpoint. The file is written atomically,
by default to :data:`tsjnet_sdk.shipped.SHIPPED_WEIGHTS`.
"""

from __future__ import annotations

from pathlib import Path

from tsjnet_sdk.hashing import file_sha256
from tsjnet_sdk.models.checkpoint import load_checkpoint, read_checkpoint_metadata, save_checkpoint
from tsjnet_sdk.shipped import SHIPPED_WEIGHTS


def ship(checkpoint: str | Path, config: str | Path, out: str | Path = SHIPPED_WEIGHTS) -> Path:
    """Write ``checkpoint`` as float16 shipped weights with provenance metadata; returns the path."""
    import torch

    checkpoint, config = Path(checkpoint), Path(config)
    if not config.is_file():
        raise FileNotFoundError(f"training config {config} not found (give the config the run was trained with)")
    source = read_checkpoint_metadata(checkpoint)
    if "training_step" not in source:
        raise ValueError(f"{checkpoint} has no training_step in its metadata: not a checkpoint written by `tsjnet train`")
    model = load_checkpoint(checkpoint)
    provenance = {
        "training_config": config.as_posix(),
        "training_step": source["training_step"],
        "source_checkpoint": checkpoint.name,
        "source_sha256": file_sha256(checkpoint),
    }
    return save_checkpoint(model, out, extra_metadata=provenance, dtype=torch.float16)


if __name__ == "__main__":
    # `python -m tsjnet_sdk.training.ship`: the same command as `tsjnet ship`. The CLI is imported only here:
    # the command-line layer imports this module, never the reverse (tests/test_import_graph.py).
    from tsjnet_sdk.cli_support import run_command
    from tsjnet_sdk.training.cli import ship_command

    raise SystemExit(run_command(ship_command, None, "python -m tsjnet_sdk.training.ship"))
