"""The task networks that drive the fusion: torchvision Faster R-CNN (ResNet-50 FPN) and DeepLabV3
(ResNet-101 or -50).

Nothing can be downloaded on the project's machines, so both are built with ``weights=None,
weights_backbone=None`` and load their weights from a user-given file (a torchvision state dict,
``.pth``/``.pt`` or ``.safetensors``); heads whose class count differs from this run's label space
(e.g. COCO's 91-class box predictor, VOC's 21-class DeepLab classifier) are dropped from the file and
re-initialised, and the log says so. Without weights the networks can be trained by this pipeline
(``tasks.pretrain_steps`` and/or ``tasks.mode = "joint"``).

Both take the grey image replicated to 3 channels. Faster R-CNN normalises with the ImageNet mean/std
inside its GeneralizedRCNNTransform; DeepLabV3 gets the same normalisation here (the official script
fed it un-normalised [0, 1] images).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from tsjnet_sdk.errors import TsjnetError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class TaskWeightsError(TsjnetError, ValueError):
    """A task-network weights file that does not fit the network."""


def gray_to_rgb(x: Tensor) -> Tensor:
    """[..., 1, H, W] -> [..., 3, H, W] (a view)."""
    return x.expand(*x.shape[:-3], 3, *x.shape[-2:])


def build_detector(
    num_classes: int, min_size: int = 800, max_size: int = 1333, norm: str = "frozen_bn", trainable_backbone_layers: int = 5
) -> nn.Module:
    """Faster R-CNN ResNet-50 FPN (v1, as the paper and the official code) for ``num_classes`` object
    classes (+ background), random weights."""
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.ops.misc import FrozenBatchNorm2d

    norm_layer = FrozenBatchNorm2d if norm == "frozen_bn" else nn.BatchNorm2d
    backbone = resnet_fpn_backbone(
        backbone_name="resnet50", weights=None, norm_layer=norm_layer, trainable_layers=trainable_backbone_layers
    )
    return FasterRCNN(backbone, num_classes=num_classes + 1, min_size=min_size, max_size=max_size)


def build_segmenter(num_classes: int, backbone: str = "resnet101") -> nn.Module:
    """DeepLabV3 (torchvision; not V3+, as the official code) with ``num_classes`` outputs, random weights."""
    from torchvision.models.segmentation import deeplabv3_resnet50, deeplabv3_resnet101

    fn = {"resnet101": deeplabv3_resnet101, "resnet50": deeplabv3_resnet50}[backbone]
    return fn(weights=None, weights_backbone=None, num_classes=num_classes, aux_loss=False)


def read_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """A state dict from .safetensors or a torch file (plain, or under 'model'/'state_dict')."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"task-network weights not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure: named in TaskWeightsError
        raise TaskWeightsError(f"{path}: cannot read as a torch state dict ({e})") from None
    for key in ("model", "state_dict"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise TaskWeightsError(f"{path}: not a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_task_weights(net: nn.Module, path: str | os.PathLike, what: str) -> list[str]:
    """Load ``path`` into ``net``: keys whose shapes differ (class-specific heads) and keys the net does
    not have (e.g. DeepLab's aux classifier) are left out. Returns notes for the log; raises when less
    than half of the network's weights were found (the wrong architecture)."""
    state = read_state_dict(path)
    own = net.state_dict()
    usable = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    reshaped = sorted(k for k, v in state.items() if k in own and tuple(v.shape) != tuple(own[k].shape))
    unexpected = sorted(k for k in state if k not in own and not k.endswith("num_batches_tracked"))
    counted = [k for k in own if not k.endswith("num_batches_tracked")]
    found = sum(1 for k in counted if k in usable)
    if found < len(counted) / 2:
        raise TaskWeightsError(
            f"{path}: only {found} of {len(counted)} {what} weights match; is this a torchvision "
            f"{'Faster R-CNN ResNet-50 FPN' if what == 'detector' else 'DeepLabV3'} state dict?"
        )
    net.load_state_dict(usable, strict=False)
    notes = [f"{what}: loaded {found}/{len(counted)} tensors from {path}"]
    heads = sorted({k.rsplit(".", 1)[0] for k in reshaped})
    if heads:
        notes.append(f"{what}: re-initialised (class count differs from the file): {', '.join(heads)}")
    missing = [k for k in counted if k not in usable and k not in reshaped]
    if missing:
        notes.append(f"{what}: {len(missing)} tensors not in the file keep their initialisation, e.g. {missing[:3]}")
    if unexpected:
        notes.append(f"{what}: ignored {len(unexpected)} tensors the network does not have, e.g. {unexpected[:3]}")
    return notes


def set_trainable(net: nn.Module, trainable: bool) -> None:
    """Frozen: no parameter gradients, BatchNorm statistics and dropout fixed (eval behaviour), but the
    module stays in train mode so that Faster R-CNN computes its losses. Trainable: plain train mode."""
    net.train()
    for p in net.parameters():
        p.requires_grad_(trainable)
    if not trainable:
        for m in net.modules():
            if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.Dropout, nn.Dropout2d)):
                m.eval()


def freeze_untrainable_detector_layers(det: nn.Module, trainable_layers: int) -> None:
    """Re-apply torchvision's trainable-layer choice after set_trainable(True) (which enables all)."""
    layers = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
    if trainable_layers == 5:
        layers.append("bn1")
    body = det.backbone.body
    for name, p in body.named_parameters():
        if all(not name.startswith(layer) for layer in layers):
            p.requires_grad_(False)


def detector_inputs(images: Tensor) -> list[Tensor]:
    """[B, 1, H, W] in [0, 1] -> list of [3, H, W] (GeneralizedRCNNTransform normalises them)."""
    return [gray_to_rgb(x) for x in images]


def segmenter_forward(net: nn.Module, images: Tensor) -> Tensor:
    """[B, 1, H, W] in [0, 1] -> logits [B, C, H, W] (ImageNet-normalised RGB replica in)."""
    mean = images.new_tensor(IMAGENET_MEAN)[None, :, None, None]
    std = images.new_tensor(IMAGENET_STD)[None, :, None, None]
    return net((gray_to_rgb(images) - mean) / std)["out"]


def save_task_weights(net: nn.Module, path: str | os.PathLike, metadata: dict[str, Any]) -> Path:
    """A task network's state dict as safetensors (atomic), loadable again as tasks.*.weights."""
    from safetensors.torch import save_file

    from tsjnet_sdk.atomic import atomic_path

    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={k: str(v) for k, v in metadata.items()})
    return path
