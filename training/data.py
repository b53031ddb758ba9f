"""Training data: IR/visible pairs from ``ir/`` and ``vi/`` folders, optional detection boxes (YOLO txt,
VOC XML) and segmentation maps (class-id PNG), label-aware random crops and flips.

Images go through :func:`tsjnet_sdk.imaging.prepare_pair`, the runtime's one pre-processing: the
visible image enters as its BT.601 luma, IR as grey, 8/16-bit scaled to [0, 1]. (The official script
trained on the visible R channel and tested on luma, spec §8.5; here training and inference agree.)

Detection targets follow torchvision: boxes ``[N, 4]`` xyxy in pixels of the (cropped) sample, labels
int64 with 0 = background, so a dataset's class id k becomes global label ``index + 1`` in the
detection label space (the datasets' class tables merged, or ``tasks.detection.classes``).

Sample randomness is a pure function of (seed, epoch, index), so a run resumed mid-epoch and any
number of DataLoader workers see exactly the same crops.
"""

from __future__ import annotations

import hashlib
import math
import warnings
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tsjnet_sdk.errors import TsjnetError
from tsjnet_sdk.imaging import ImageError, prepare_pair, read_image
from tsjnet_sdk.pairing import PairingError, index_images
from tsjnet_sdk.training.config import CLASS_TABLES, DatasetConfig

MODALITIES = ("fused", "ir", "vi")


class DataError(TsjnetError, ValueError):
    """A training pair or label that cannot be used; the message names the file and the fix."""


class LabelError(DataError):
    """A label file that cannot be used (malformed line, unknown class, out-of-range value)."""


# ----------------------------------------------------------------------------------------------
# Class tables


def class_table(spec: str | list[str]) -> tuple[str, ...]:
    if isinstance(spec, str):
        if spec not in CLASS_TABLES:
            raise DataError(f"unknown class table {spec!r}; known: {sorted(CLASS_TABLES)}, or give the names as a list")
        return CLASS_TABLES[spec]
    return tuple(spec)


def _dataset_det_names(ds: DatasetConfig) -> list[str]:
    return [ds.det_aliases.get(n, n) for n in class_table(ds.det_classes)]


def has_det_labels(ds: DatasetConfig) -> bool:
    return any((ds.det_labels, ds.det_labels_ir, ds.det_labels_vi))


def detection_label_space(datasets: list[DatasetConfig], explicit: list[str] | None = None) -> list[str]:
    """The global detection classes (label k+1 = names[k]): ``explicit``, or the datasets' tables merged
    in order of appearance (case-insensitive)."""
    if explicit:
        return list(explicit)
    names: list[str] = []
    seen: set[str] = set()
    for ds in datasets:
        if not has_det_labels(ds):
            continue
        for n in _dataset_det_names(ds):
            if n.lower() not in seen:
                seen.add(n.lower())
                names.append(n)
    return names


def segmentation_classes(datasets: list[DatasetConfig]) -> tuple[str, ...] | None:
    """The one segmentation class table of the datasets that have seg labels (they must agree)."""
    tables = {class_table(ds.seg_classes) for ds in datasets if ds.seg_labels}
    if not tables:
        return None
    if len(tables) > 1:
        raise DataError(
            f"datasets declare different segmentation class tables {sorted(tables)}; one segmentation network "
            "needs one label space: relabel the maps or train on one of them"
        )
    return tables.pop()


# ----------------------------------------------------------------------------------------------
# Label parsing


@dataclass
class Boxes:
    """Boxes xyxy (pixels of the full image) and global labels (1-based, 0 = background)."""

    boxes: np.ndarray  # float32 [N, 4]
    labels: np.ndarray  # int64 [N]

    @staticmethod
    def empty() -> Boxes:
        return Boxes(np.zeros((0, 4), np.float32), np.zeros((0,), np.int64))

    def __len__(self) -> int:
        return len(self.labels)


def _global_label(local_name: str, global_index: dict[str, int], path: Path, where: str) -> int:
    idx = global_index.get(local_name.lower())
    if idx is None:
        raise LabelError(
            f"{path}{where}: class {local_name!r} is not in the detection label space {sorted(global_index)}; "
            "add it to tasks.detection.classes or map it with the dataset's det_aliases"
        )
    return idx + 1


def parse_yolo(path: Path, names: list[str], global_index: dict[str, int], width: float, height: float) -> tuple[Boxes, int]:
    """YOLO txt (``class cx cy w h`` normalised, any whitespace) -> (Boxes in pixels, dropped degenerate count)."""
    boxes, labels, dropped = [], [], 0
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 5:
            raise LabelError(f"{path}:{lineno}: expected 'class cx cy w h' (5 fields), got {len(parts)}: {line.strip()!r}")
        try:
            cls_id = int(float(parts[0]))
            if float(parts[0]) != cls_id:
                raise ValueError
            cx, cy, w, h = (float(v) for v in parts[1:])
        except ValueError:
            raise LabelError(f"{path}:{lineno}: not numbers: {line.strip()!r}") from None
        if not 0 <= cls_id < len(names):
            raise LabelError(
                f"{path}:{lineno}: class id {cls_id} is outside the dataset's class table {names} "
                f"(ids 0..{len(names) - 1}); set det_classes for this dataset"
            )
        if not all(math.isfinite(v) for v in (cx, cy, w, h)) or w < 0 or h < 0:
            raise LabelError(f"{path}:{lineno}: invalid box {line.strip()!r}")
        label = _global_label(names[cls_id], global_index, path, f":{lineno}")
        x1, y1 = (cx - w / 2) * width, (cy - h / 2) * height
        x2, y2 = (cx + w / 2) * width, (cy + h / 2) * height
        x1, x2 = max(0.0, x1), min(float(width), x2)
        y1, y2 = max(0.0, y1), min(float(height), y2)
        if x2 - x1 < 1 or y2 - y1 < 1:
            dropped += 1
            continue
        boxes.append((x1, y1, x2, y2))
        labels.append(label)
    return _as_boxes(boxes, labels), dropped


def _as_boxes(boxes: list[tuple[float, float, float, float]], labels: list[int]) -> Boxes:
    if not boxes:
        return Boxes.empty()
    return Boxes(np.asarray(boxes, np.float32), np.asarray(labels, np.int64))


def parse_voc(path: Path, global_index: dict[str, int], aliases: dict[str, str]) -> tuple[Boxes, int]:
    """Pascal-VOC XML (``<object><name>`` + ``<bndbox>``) -> (Boxes in pixels, dropped degenerate count)."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise LabelError(f"{path}: not valid XML ({e})") from None
    boxes, labels, dropped = [], [], 0
    for i, obj in enumerate(root.iter("object")):
        name = (obj.findtext("name") or "").strip()
        bb = obj.find("bndbox")
        if not name or bb is None:
            raise LabelError(f"{path}: object #{i} lacks <name> or <bndbox>")
        try:
            x1, y1, x2, y2 = (float(bb.findtext(k) or "nan") for k in ("xmin", "ymin", "xmax", "ymax"))
        except ValueError:
            raise LabelError(f"{path}: object #{i} ({name}) has a non-numeric box") from None
        if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
            raise LabelError(f"{path}: object #{i} ({name}) has an incomplete <bndbox>")
        label = _global_label(aliases.get(name, name), global_index, path, f" object #{i}")
        if x2 - x1 < 1 or y2 - y1 < 1:
            dropped += 1
            continue
        boxes.append((x1, y1, x2, y2))
        labels.append(label)
    return _as_boxes(boxes, labels), dropped


def read_label_map(path: Path) -> np.ndarray:
    """A class-id PNG (grey 8/16-bit or palette: the palette index is the class) -> int64 H x W.

    Not :func:`read_image`: that converts palette images to RGB, which would lose the class ids; and
    not a [0, 1] conversion (the official script's ToTensor divided ids by 255, wiping them to 0).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("L", "P", "I;16", "I;16L", "I;16B", "I"):
                arr = np.asarray(im)
            else:
                raise LabelError(
                    f"{path}: segmentation labels must be single-channel class-id images (grey or palette), got "
                    f"mode {im.mode} (a colour visualisation? convert it back to class ids)"
                )
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise LabelError(f"{path}: cannot read the label map ({e})") from None
    return arr.astype(np.int64)


# ----------------------------------------------------------------------------------------------
# Scanning a dataset root


@dataclass
class PairRecord:
    name: str
    dataset: str
    ir: Path
    vi: Path
    width: int
    height: int
    det: dict[str, Boxes] | None = None  # keys "fused", "ir", "vi"; None = no detection labels
    seg: Path | None = None  # class-id map, or None


@dataclass
class ScanReport:
    pairs: int = 0
    skipped: Counter = field(default_factory=Counter)  # reason -> count
    skipped_examples: list[str] = field(default_factory=list)
    unpaired: int = 0
    missing_det: int = 0
    dropped_boxes: int = 0
    boxes: int = 0
    det_datasets: list[str] = field(default_factory=list)
    seg_datasets: list[str] = field(default_factory=list)
    unlabelled_datasets: list[str] = field(default_factory=list)

    def skip(self, reason: str, message: str) -> None:
        self.skipped[reason] += 1
        if len(self.skipped_examples) < 10:
            self.skipped_examples.append(message)

    def lines(self) -> list[str]:
        out = [f"{self.pairs} pair(s)"]
        if self.skipped:
            out.append(
                f"skipped {sum(self.skipped.values())} pair(s): " + ", ".join(f"{k} {v}" for k, v in sorted(self.skipped.items()))
            )
            out += [f"  {m}" for m in self.skipped_examples]
        if self.unpaired:
            out.append(f"{self.unpaired} image(s) without a partner in the other modality (ignored)")
        if self.missing_det:
            out.append(f"{self.missing_det} detection label file(s) missing: treated as images without objects")
        if self.dropped_boxes:
            out.append(f"{self.dropped_boxes} degenerate box(es) (< 1 px) dropped")
        return out


def _index_images(folder: Path) -> dict[str, Path]:
    """Images by stem, name order: the SDK's one pairing rule (tsjnet_sdk.pairing), errors as DataError."""
    try:
        return index_images(folder)
    except PairingError as e:
        raise DataError(str(e)) from None


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise ImageError(f"{path}: not a readable image ({e})") from None


def _label_file(folder: Path, stem: str, fmt: str) -> Path | None:
    suffixes = {"yolo": (".txt",), "voc": (".xml",), "auto": (".txt", ".xml")}[fmt]
    for s in suffixes:
        p = folder / f"{stem}{s}"
        if p.is_file():
            return p
    return None


def scan_dataset(
    ds: DatasetConfig,
    det_classes: list[str],
    seg_num_classes: int | None,
    ignore_index: int,
    on_error: str = "raise",
    missing_det_label: str = "empty",
    report: ScanReport | None = None,
) -> list[PairRecord]:
    """Pair the images of one root, read the headers (sizes must match) and parse its labels.

    Raises :class:`DataError` / :class:`ImageError` on the first problem (``on_error='raise'``), or skips
    the pair and counts it in ``report`` (``'skip'``).
    """
    report = report if report is not None else ScanReport()
    root = Path(ds.root)
    if not root.is_dir():
        raise DataError(f"dataset root not found: {root}")
    irs, vis = _index_images(root / ds.ir), _index_images(root / ds.vi)
    report.unpaired += len(irs.keys() ^ vis.keys())
    names = sorted(irs.keys() & vis.keys())
    if not names:
        raise DataError(f"{root}: no pairs (no file names in common between {ds.ir}/ and {ds.vi}/)")
    label_dirs = {m: d for m, d in (("fused", ds.det_labels), ("ir", ds.det_labels_ir), ("vi", ds.det_labels_vi)) if d}
    for d in label_dirs.values():
        if not (root / d).is_dir():
            raise DataError(f"{root}: detection label folder {d!r} not found")
    if ds.seg_labels and not (root / ds.seg_labels).is_dir():
        raise DataError(f"{root}: segmentation label folder {ds.seg_labels!r} not found")
    local_names = _dataset_det_names(ds)
    global_index = {n.lower(): i for i, n in enumerate(det_classes)}
    dataset_name = ds.display_name()
    if label_dirs:
        report.det_datasets.append(dataset_name)
    if ds.seg_labels:
        report.seg_datasets.append(dataset_name)
    if not label_dirs and not ds.seg_labels:
        report.unlabelled_datasets.append(dataset_name)

    records: list[PairRecord] = []
    for name in names:
        try:
            ir_size, vi_size = _image_size(irs[name]), _image_size(vis[name])
            if ir_size != vi_size:
                raise DataError(
                    f"{dataset_name}/{name}: IR is {ir_size[0]}x{ir_size[1]} but visible is {vi_size[0]}x{vi_size[1]} "
                    "(W x H): pairs must be registered to one size"
                )
            w, h = ir_size
            det = None
            if label_dirs:
                per_mod: dict[str, Boxes] = {}
                for mod, d in label_dirs.items():
                    path = _label_file(root / d, name, ds.det_format)
                    if path is None:
                        if missing_det_label == "error":
                            raise LabelError(f"{root / d}: no label file for {name}")
                        report.missing_det += 1
                        per_mod[mod] = Boxes.empty()
                        continue
                    if path.suffix == ".txt":
                        yw, yh = ds.yolo_image_size or (w, h)
                        boxes, dropped = parse_yolo(path, local_names, global_index, yw, yh)
                        if ds.yolo_image_size and (yw, yh) != (w, h):  # labels made on another size: rescale
                            boxes.boxes *= np.array([w / yw, h / yh, w / yw, h / yh], np.float32)
                    else:
                        boxes, dropped = parse_voc(path, global_index, ds.det_aliases)
                    report.dropped_boxes += dropped
                    per_mod[mod] = boxes
                first = next(iter(per_mod.values()))
                det = {m: per_mod.get(m, per_mod.get("fused", first)) for m in MODALITIES}
                if "fused" not in per_mod:  # no fused-image labels: use the IR ones, else the visible ones
                    det["fused"] = per_mod.get("ir", per_mod.get("vi", first))
                report.boxes += len(det["fused"])
            seg = None
            if ds.seg_labels:
                seg = root / ds.seg_labels / f"{name}.png"
                if not seg.is_file():
                    raise LabelError(f"{seg}: segmentation label missing for pair {name}")
                check_label_map(read_label_map(seg), seg, (h, w), seg_num_classes, ignore_index)
            records.append(PairRecord(name, dataset_name, irs[name], vis[name], w, h, det, seg))
        except (DataError, ImageError) as e:
            if on_error == "raise":
                raise
            reason = (
                "unknown class"
                if "not in the detection label space" in str(e) or "outside the dataset's class" in str(e)
                else "size mismatch"
                if "registered to one size" in str(e)
                else "unreadable"
                if isinstance(e, ImageError)
                else "bad label"
            )
            report.skip(reason, str(e))
    report.pairs += len(records)
    return records


def check_label_map(arr: np.ndarray, path: Path, hw: tuple[int, int], num_classes: int | None, ignore_index: int) -> None:
    if arr.shape != hw:
        raise LabelError(f"{path}: label map is {arr.shape[1]}x{arr.shape[0]} but the pair is {hw[1]}x{hw[0]} (W x H)")
    if num_classes is not None:
        bad = np.unique(arr[(arr >= num_classes) & (arr != ignore_index)])
        if bad.size:
            raise LabelError(
                f"{path}: class ids {bad[:10].tolist()} outside 0..{num_classes - 1} (ignore index {ignore_index}); "
                "wrong class table, or a colour/scaled label image"
            )
        if (arr < 0).any():
            raise LabelError(f"{path}: negative class ids")


def holdout_split(records: list[PairRecord], fraction: float, seed: int) -> tuple[list[PairRecord], list[PairRecord]]:
    """Deterministic (name-hash) split: (train, held) with round(fraction * n) held pairs."""
    if fraction <= 0:
        return records, []

    def key(r: PairRecord) -> str:
        return hashlib.sha256(f"{seed}:{r.dataset}/{r.name}".encode()).hexdigest()

    order = sorted(records, key=key)
    n_held = max(1, round(fraction * len(records)))
    held = {id(r) for r in order[:n_held]}
    return [r for r in records if id(r) not in held], [r for r in records if id(r) in held]


# ----------------------------------------------------------------------------------------------
# Augmentation


@dataclass
class AugmentConfig:
    crop: tuple[int, int] | None = None
    hflip: float = 0.5
    vflip: float = 0.0
    gain: tuple[float, float] | None = None  # per-modality exposure gain range (log-uniform), see DataConfig
    gain_prob: float = 0.0
    object_crop_prob: float = 0.5
    min_box_visibility: float = 0.3
    min_box_size: float = 2.0
    ignore_index: int = 255
    center: bool = False  # centre crop, no flips (validation)


def _pad_to(arr: np.ndarray, h: int, w: int, value: float | None) -> np.ndarray:
    ph, pw = max(0, h - arr.shape[0]), max(0, w - arr.shape[1])
    if not ph and not pw:
        return arr
    pad = ((0, ph), (0, pw)) + ((0, 0),) * (arr.ndim - 2)
    if value is None:
        return np.pad(arr, pad, mode="reflect" if min(arr.shape[:2]) > 1 else "edge")
    return np.pad(arr, pad, mode="constant", constant_values=value)


def crop_boxes(boxes: Boxes, x0: int, y0: int, w: int, h: int, min_visibility: float, min_size: float) -> Boxes:
    """Boxes of a full image -> boxes of the crop [x0, x0+w) x [y0, y0+h); drops boxes mostly outside."""
    if not len(boxes):
        return Boxes.empty()
    b = boxes.boxes - np.array([x0, y0, x0, y0], np.float32)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    c = np.stack([b[:, 0].clip(0, w), b[:, 1].clip(0, h), b[:, 2].clip(0, w), b[:, 3].clip(0, h)], axis=1)
    cw, ch = c[:, 2] - c[:, 0], c[:, 3] - c[:, 1]
    keep = (cw >= min_size) & (ch >= min_size) & (cw * ch >= min_visibility * np.maximum(area, 1e-6))
    return Boxes(c[keep].astype(np.float32), boxes.labels[keep])


def hflip_boxes(boxes: Boxes, w: int) -> Boxes:
    b = boxes.boxes.copy()
    b[:, [0, 2]] = w - boxes.boxes[:, [2, 0]]
    return Boxes(b, boxes.labels)


def vflip_boxes(boxes: Boxes, h: int) -> Boxes:
    b = boxes.boxes.copy()
    b[:, [1, 3]] = h - boxes.boxes[:, [3, 1]]
    return Boxes(b, boxes.labels)


def _random_gain(x: np.ndarray, rng: np.random.Generator, gain: tuple[float, float], prob: float) -> np.ndarray:
    """x [H, W] in [0, 1] times a log-uniform gain from ``gain`` with probability ``prob``, clipped to [0, 1]."""
    if rng.random() >= prob:
        return x
    g = math.exp(rng.uniform(math.log(gain[0]), math.log(gain[1])))
    return np.clip(x * g, 0.0, 1.0).astype(x.dtype, copy=False)


def augment(
    ir: np.ndarray,
    vis: np.ndarray,
    det: dict[str, Boxes] | None,
    seg: np.ndarray | None,
    rng: np.random.Generator,
    cfg: AugmentConfig,
) -> tuple[np.ndarray, np.ndarray, dict[str, Boxes] | None, np.ndarray | None]:
    """Random (or centre) crop + flips applied consistently to both images, the boxes and the map; then,
    if configured, a random exposure gain per modality (images only)."""
    if cfg.crop is not None:
        ch, cw = cfg.crop
        ir, vis = _pad_to(ir, ch, cw, None), _pad_to(vis, ch, cw, None)  # small images: reflect-pad bottom/right
        if seg is not None:
            seg = _pad_to(seg, ch, cw, cfg.ignore_index)
        h, w = ir.shape
        if cfg.center:
            y0, x0 = (h - ch) // 2, (w - cw) // 2
        else:
            boxes = det["fused"] if det else None
            if boxes is not None and len(boxes) and rng.random() < cfg.object_crop_prob:
                # place the crop so that a randomly chosen box's centre lies inside it
                b = boxes.boxes[rng.integers(len(boxes))]
                cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
                x_lo, x_hi = max(0, int(math.ceil(cx)) - cw + 1), min(w - cw, int(cx))
                y_lo, y_hi = max(0, int(math.ceil(cy)) - ch + 1), min(h - ch, int(cy))
                x0 = int(rng.integers(x_lo, x_hi + 1)) if x_hi >= x_lo else int(rng.integers(0, w - cw + 1))
                y0 = int(rng.integers(y_lo, y_hi + 1)) if y_hi >= y_lo else int(rng.integers(0, h - ch + 1))
            else:
                x0 = int(rng.integers(0, w - cw + 1))
                y0 = int(rng.integers(0, h - ch + 1))
        ir, vis = ir[y0 : y0 + ch, x0 : x0 + cw], vis[y0 : y0 + ch, x0 : x0 + cw]
        if seg is not None:
            seg = seg[y0 : y0 + ch, x0 : x0 + cw]
        if det is not None:
            det = {m: crop_boxes(b, x0, y0, cw, ch, cfg.min_box_visibility, cfg.min_box_size) for m, b in det.items()}
    h, w = ir.shape
    if not cfg.center:
        if rng.random() < cfg.hflip:
            ir, vis = ir[:, ::-1], vis[:, ::-1]
            seg = seg[:, ::-1] if seg is not None else None
            det = {m: hflip_boxes(b, w) for m, b in det.items()} if det is not None else None
        if rng.random() < cfg.vflip:
            ir, vis = ir[::-1], vis[::-1]
            seg = seg[::-1] if seg is not None else None
            det = {m: vflip_boxes(b, h) for m, b in det.items()} if det is not None else None
        if cfg.gain is not None and cfg.gain_prob > 0:
            ir, vis = (_random_gain(x, rng, cfg.gain, cfg.gain_prob) for x in (ir, vis))
    seg = np.ascontiguousarray(seg) if seg is not None else None
    return np.ascontiguousarray(ir), np.ascontiguousarray(vis), det, seg


# ----------------------------------------------------------------------------------------------
# torch Dataset, sampler, collate


def _torch():
    import torch

    return torch


class FusionPairDataset:
    """Map-style dataset over :class:`PairRecord` s. ``ds[(index, epoch)]`` (or ``ds[index]``, epoch 0)
    returns a dict: ``ir``, ``vis`` float tensors [1, h, w] in [0, 1]; ``name``; ``det`` (dict modality ->
    {boxes, labels} tensors, or None); ``seg`` (int64 [h, w] or None)."""

    def __init__(
        self,
        records: list[PairRecord],
        augment_cfg: AugmentConfig,
        seed: int = 0,
        on_error: str = "raise",
        repeat: list[int] | None = None,
    ) -> None:
        self.records = records
        self.aug = augment_cfg
        self.seed = seed
        self.on_error = on_error
        self.index = [i for i, r in enumerate(records) for _ in range((repeat or [1] * len(records))[i])]
        self.load_failures = 0

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key: Any) -> dict[str, Any]:
        index, epoch = key if isinstance(key, tuple) else (key, 0)
        for attempt in range(min(len(self.index), 20)):
            i = (index + attempt) % len(self.index)
            try:
                return self.load(i, epoch)
            except (ImageError, DataError) as e:
                if self.on_error == "raise":
                    raise
                self.load_failures += 1
                warnings.warn(f"skipping unreadable training pair ({e}); using the next one", stacklevel=2)
        raise DataError("20 consecutive training pairs failed to load; check the dataset")

    def load(self, i: int, epoch: int) -> dict[str, Any]:
        torch = _torch()
        rec = self.records[self.index[i]]
        ir_raw, vis_raw = read_image(rec.ir), read_image(rec.vi)
        try:
            ir, vis, _ = prepare_pair(ir_raw, vis_raw)
        except ImageError as e:
            raise ImageError(f"{rec.dataset}/{rec.name}: {e}") from None
        seg = read_label_map(rec.seg) if rec.seg is not None else None
        rng = np.random.default_rng([self.seed, epoch, i])
        ir, vis, det, seg = augment(ir, vis, rec.det, seg, rng, self.aug)
        det_t = None
        if det is not None:
            det_t = {
                m: {"boxes": torch.from_numpy(b.boxes.reshape(-1, 4).copy()), "labels": torch.from_numpy(b.labels.copy())}
                for m, b in det.items()
            }
        return {
            "ir": torch.from_numpy(ir)[None],
            "vis": torch.from_numpy(vis)[None],
            "name": f"{rec.dataset}/{rec.name}",
            "det": det_t,
            "seg": torch.from_numpy(seg) if seg is not None else None,
        }


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    torch = _torch()
    shapes = {tuple(s["ir"].shape) for s in samples}
    if len(shapes) > 1:
        raise DataError(
            f"pairs in one batch differ in size {sorted(shapes)}: set data.crop_size (e.g. 256) or use batch_size 1 per size"
        )
    return {
        "ir": torch.stack([s["ir"] for s in samples]),
        "vis": torch.stack([s["vis"] for s in samples]),
        "names": [s["name"] for s in samples],
        "det": [s["det"] for s in samples],
        "seg": [s["seg"] for s in samples],
    }


def make_sampler(dataset: Any, num_replicas: int, rank: int, shuffle: bool, seed: int, batch_size: int) -> Any:
    """A DistributedSampler (also for one process) that yields ``(index, epoch)`` and can start mid-epoch."""
    from torch.utils.data.distributed import DistributedSampler

    class ResumableDistributedSampler(DistributedSampler):
        def __init__(self) -> None:
            super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=True)
            self.start_batch = 0
            self.batch_size = batch_size

        def set_position(self, epoch: int, start_batch: int = 0) -> None:
            self.set_epoch(epoch)
            self.start_batch = start_batch

        def batches_per_epoch(self) -> int:
            return self.num_samples // self.batch_size

        def __iter__(self):  # type: ignore[override]
            indices = list(super().__iter__())
            usable = self.batches_per_epoch() * self.batch_size
            return iter([(i, self.epoch) for i in indices[self.start_batch * self.batch_size : usable]])

        def __len__(self) -> int:
            return max(0, self.batches_per_epoch() - self.start_batch) * self.batch_size

    return ResumableDistributedSampler()
