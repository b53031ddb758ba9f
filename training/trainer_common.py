"""Shared pieces of the trainer: state-file constants, :class:`TrainingError`, the DDP unwrap, a
BatchNorm-eval context, the attention-group helpers and the process-group wrapper (``_Dist``).
"""

from __future__ import annotations

import contextlib
import os

import torch
import torch.distributed as dist
from torch import Tensor, nn

from tsjnet_sdk.errors import TsjnetError

STATE_FORMAT = "tsjnet-train-state"
STATE_VERSION = 1
FUSION_TERMS = ("ssim", "diversity", "recon_ir", "recon_vis", "intensity", "gradient")
# Changing these between a run and its resume changes the trajectory: warn.
_RESUME_SENSITIVE = ("model", "data", "loss", "optim", "scheduler", "tasks", "run.seed", "run.amp", "run.amp_dtype")


class TrainingError(TsjnetError, RuntimeError):
    """Training cannot go on (non-finite losses, an unusable resume state, ...)."""


# ----------------------------------------------------------------------------------------------
# Small helpers


def attention_groups_in_use(att: Tensor, threshold: float = 0.1) -> Tensor:
    """How many of the decoder's attention groups pass their channels on: groups whose map
    [B, G, H, W] averages above ``threshold``. A collapsed decoder (one group ~1, the rest ~0) gives 1-2
    of 8 and gates most fused channels to zero."""
    return (att.float().mean(dim=(0, 2, 3)) > threshold).sum().float()


def reopen_attention(model: nn.Module) -> None:
    """Set the decoder's grouped 1x1 attention conv to weight 0, bias +3: every group's map becomes
    sigmoid(3) ~ 0.95 everywhere, so all fused channels pass again and training re-learns the gates."""
    conv = _unwrap(model).decoder.attention.to_maps
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.fill_(3.0)


def _unwrap(m: nn.Module) -> nn.Module:
    return m.module if isinstance(m, nn.parallel.DistributedDataParallel) else m


@contextlib.contextmanager
def _bn_eval(net: nn.Module, active: bool):
    """BatchNorm in eval for one forward (a trainable DeepLab's ASPP pooling BN cannot take batch 1)."""
    if not active:
        yield
        return
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    for m in bns:
        m.eval()
    try:
        yield
    finally:
        for m in bns:
            m.train()


class _Dist:
    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.owns_group = False

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def init(self, backend: str) -> None:
        if self.enabled and not dist.is_initialized():
            dist.init_process_group(backend=backend)
            self.owns_group = True

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
            self.owns_group = False
