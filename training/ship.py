"""Turn a training run's checkpoint into the SDK's shipped weights (``tsjnet_sdk/weights/``).

    python -m tsjnet_sdk.training.ship outputs/train/edge/last.safetensors training/configs/edge.toml

Loads the checkpoint, stores its floating-point tensors as float16 (half the file; the model card
records what that costs: ``tsjnet_sdk/weights/README.md``) and adds provenance to the metadata: the
training config, the step, and the SHA-256 of the source checkpoint. The file is written atomically,
by default to :data:`tsjnet_sdk.shipped.SHIPPED_WEIGHTS`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tsjnet_sdk.shipped import SHIPPED_WEIGHTS
from tsjnet_sdk.models.checkpoint import file_sha256, load_checkpoint, read_checkpoint_metadata, save_checkpoint


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="a checkpoint written by `tsjnet train`")
    parser.add_argument("config", type=Path, help="the training config of that run (recorded in the metadata)")
    parser.add_argument("--out", type=Path, default=SHIPPED_WEIGHTS, help=f"default {SHIPPED_WEIGHTS}")
    args = parser.parse_args(argv)
    path = ship(args.checkpoint, args.config, args.out)
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB, sha256 {file_sha256(path)})")


if __name__ == "__main__":
    main()
