"""Training data: pairing, YOLO/VOC labels (real MSRS detection labels), segmentation maps, label-aware
crops, error handling, the resumable sampler, configs. No task networks here (fast)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tsjnet_sdk.imaging import ImageError, prepare_pair, read_image
from tsjnet_sdk.training.config import CLASS_TABLES, ConfigError, DatasetConfig, TrainConfig, config_from_dict, load_config
from tsjnet_sdk.training.data import (
    AugmentConfig,
    Boxes,
    DataError,
    FusionPairDataset,
    LabelError,
    ScanReport,
    augment,
    collate,
    detection_label_space,
    make_sampler,
    parse_voc,
    parse_yolo,
    read_label_map,
    scan_dataset,
)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MSRS_DET = ["person", "bicycle", "car"]
GLOBAL = {n: i for i, n in enumerate(MSRS_DET)}


def need_shared(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs the real data at {path} (../shared/data beside the checkout); not present here")
    return path


def make_pairs(root: Path, names: list[str], size: tuple[int, int] = (96, 80), vis_rgb: bool = True, seed: int = 0) -> Path:
    """Synthetic pairs: root/ir/NAME.png (grey) and root/vi/NAME.png (RGB); size = (W, H)."""
    rng = np.random.default_rng(seed)
    (root / "ir").mkdir(parents=True, exist_ok=True)
    (root / "vi").mkdir(parents=True, exist_ok=True)
    w, h = size
    for name in names:
        Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(root / "ir" / f"{name}.png")
        vis = rng.integers(0, 256, (h, w, 3) if vis_rgb else (h, w), dtype=np.uint8)
        Image.fromarray(vis).save(root / "vi" / f"{name}.png")
    return root


# ----------------------------------------------------------------------------------------------
# Labels


def test_parse_yolo_real_msrs_labels():
    root = need_shared("msrs", "test")
    path = root / "det_label" / "00004N.txt"
    boxes, dropped = parse_yolo(path, MSRS_DET, GLOBAL, 640, 480)
    # reference: plain str.split() of each line, YOLO -> xyxy with W=640, H=480 (data README)
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.split()]
    assert len(boxes) + dropped == len(lines)
    first = [float(v) for v in lines[0]]
    cx, cy, w, h = first[1:]
    np.testing.assert_allclose(
        boxes.boxes[0], [(cx - w / 2) * 640, (cy - h / 2) * 480, (cx + w / 2) * 640, (cy + h / 2) * 480], rtol=1e-5
    )
    assert boxes.labels[0] == int(first[0]) + 1  # torchvision convention: 0 = background
    # all three label sets parse, one box per non-empty line. (The data README says fusion 29 boxes; the
    # files hold 40 lines: some lack a final newline, so `cat | wc -l` undercounts.)
    for folder in ("det_label", "det_label_ir", "det_label_vi"):
        for p in sorted((root / folder).glob("*.txt")):
            b, d = parse_yolo(p, MSRS_DET, GLOBAL, 640, 480)
            assert len(b) + d == sum(1 for ln in p.read_text().splitlines() if ln.split()), p
            assert np.all(b.boxes[:, 2] > b.boxes[:, 0]) and np.all(b.boxes[:, 3] <= 480)


def test_parse_yolo_errors(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("0  0.5  0.5  0.2  0.2  \n3  0.5  0.5  0.1  0.1")  # two-space separators, trailing space, no newline
    with pytest.raises(LabelError, match="class id 3"):
        parse_yolo(p, MSRS_DET, GLOBAL, 100, 100)
    p.write_text("0 0.5 0.5 0.2")
    with pytest.raises(LabelError, match="5 fields"):
        parse_yolo(p, MSRS_DET, GLOBAL, 100, 100)
    p.write_text("1  0.5  0.5  0.2  0.4  ")
    b, _ = parse_yolo(p, MSRS_DET, GLOBAL, 100, 50)
    np.testing.assert_allclose(b.boxes, [[40, 15, 60, 35]])
    assert b.labels.tolist() == [2]
    # a class the global label space does not have
    with pytest.raises(LabelError, match="not in the detection label space"):
        parse_yolo(p, MSRS_DET, {"person": 0}, 100, 50)


def test_parse_voc(tmp_path):
    xml = tmp_path / "x.xml"
    xml.write_text(
        "<annotation><filename>x.png</filename>"
        "<object><name>People</name><bndbox><xmin>10</xmin><ymin>20</ymin><xmax>30</xmax><ymax>60</ymax></bndbox></object>"
        "<object><name>Car</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>50</xmax><ymax>40</ymax></bndbox></object>"
        "</annotation>"
    )
    space = {n.lower(): i for i, n in enumerate(CLASS_TABLES["m3fd"])}
    b, dropped = parse_voc(xml, space, {})
    assert dropped == 0 and b.labels.tolist() == [1, 2]
    np.testing.assert_allclose(b.boxes[0], [10, 20, 30, 60])
    # aliases map dataset names into a shared label space; unknown names are errors
    b, _ = parse_voc(xml, {"person": 0, "car": 1}, {"People": "person"})
    assert b.labels.tolist() == [1, 2]
    with pytest.raises(LabelError, match="'People'"):
        parse_voc(xml, {"car": 0}, {})


def test_label_space_merges_dataset_tables():
    a = DatasetConfig(root="a", det_labels="det", det_classes="msrs-det")
    b = DatasetConfig(root="b", det_labels="xml", det_classes="m3fd", det_aliases={"People": "person", "Car": "car"})
    c = DatasetConfig(root="c")  # no labels: contributes nothing
    assert detection_label_space([a, b, c]) == ["person", "bicycle", "car", "Bus", "Lamp", "Motorcycle", "Truck"]
    assert detection_label_space([a], ["car", "person"]) == ["car", "person"]


def test_read_label_map_keeps_class_ids(tmp_path):
    ids = np.arange(9, dtype=np.uint8).repeat(4).reshape(6, 6)
    Image.fromarray(ids, mode="L").save(tmp_path / "grey.png")
    pal = Image.fromarray(ids, mode="P")
    pal.putpalette([v for i in range(256) for v in (i, 255 - i, 0)])
    pal.save(tmp_path / "pal.png")
    for name in ("grey.png", "pal.png"):
        arr = read_label_map(tmp_path / name)
        assert arr.dtype == np.int64
        np.testing.assert_array_equal(arr, ids)  # ids, not ids / 255 (official bug, spec §8.1)
    Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(LabelError, match="single-channel"):
        read_label_map(tmp_path / "rgb.png")


# ----------------------------------------------------------------------------------------------
# Scanning and errors


def test_scan_errors_and_skip(tmp_path):
    root = make_pairs(tmp_path / "ds", ["a", "b", "c", "d"])
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(root / "ir" / "b.png")  # size mismatch
    (root / "vi" / "c.png").write_bytes(b"not a png")  # unreadable
    (root / "det").mkdir()
    (root / "det" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "det" / "d.txt").write_text("7 0.5 0.5 0.2 0.2\n")  # unknown class id
    make_pairs(tmp_path / "extra", ["z"])
    (root / "ir" / "only_ir.png").write_bytes((tmp_path / "extra" / "ir" / "z.png").read_bytes())
    ds = DatasetConfig(root=str(root), det_labels="det")
    with pytest.raises(DataError, match="registered to one size"):
        scan_dataset(ds, MSRS_DET, None, 255)
    rep = ScanReport()
    recs = scan_dataset(ds, MSRS_DET, None, 255, on_error="skip", report=rep)
    assert [r.name for r in recs] == ["a"]
    assert rep.skipped == {"size mismatch": 1, "unreadable": 1, "unknown class": 1}
    assert rep.unpaired == 1 and "skipped 3 pair(s)" in "\n".join(rep.lines())
    # missing label file: no objects (YOLO convention), counted; or an error when configured
    Image.fromarray(np.zeros((80, 96), np.uint8)).save(root / "ir" / "b.png")
    (root / "vi" / "c.png").unlink()
    (root / "det" / "d.txt").unlink()
    rep = ScanReport()
    recs = scan_dataset(ds, MSRS_DET, None, 255, report=rep)
    assert rep.missing_det == 2 and [len(r.det["fused"]) for r in recs] == [1, 0, 0]
    with pytest.raises(LabelError, match="no label file"):
        scan_dataset(ds, MSRS_DET, None, 255, missing_det_label="error")


def test_seg_label_checks(tmp_path):
    root = make_pairs(tmp_path / "ds", ["a", "b"], size=(64, 32))
    (root / "seg").mkdir()
    Image.fromarray(np.full((32, 64), 3, np.uint8)).save(root / "seg" / "a.png")
    Image.fromarray(np.full((32, 64), 12, np.uint8)).save(root / "seg" / "b.png")  # id 12 > 8
    ds = DatasetConfig(root=str(root), seg_labels="seg")
    with pytest.raises(LabelError, match=r"class ids \[12\]"):
        scan_dataset(ds, [], 9, 255)
    Image.fromarray(np.full((32, 64), 255, np.uint8)).save(root / "seg" / "b.png")  # ignore index is fine
    assert len(scan_dataset(ds, [], 9, 255)) == 2


def test_dataset_uses_runtime_preprocessing_and_combines_roots(tmp_path):
    a = make_pairs(tmp_path / "a", ["p1", "p2"], size=(64, 64))
    b = make_pairs(tmp_path / "b", ["p1"], size=(64, 64), vis_rgb=False, seed=1)
    # a 16-bit IR frame (raw thermal)
    Image.fromarray(np.full((64, 64), 40000, np.uint16)).save(b / "ir" / "p1.png")
    recs = []
    for root in (a, b):
        recs += scan_dataset(DatasetConfig(root=str(root)), [], None, 255)
    ds = FusionPairDataset(recs, AugmentConfig(crop=None, hflip=0, vflip=0))
    assert len(ds) == 3
    s = ds[0]
    ir_ref, vis_ref, _ = prepare_pair(read_image(a / "ir" / "p1.png"), read_image(a / "vi" / "p1.png"))
    np.testing.assert_array_equal(s["ir"][0].numpy(), ir_ref)
    np.testing.assert_array_equal(s["vis"][0].numpy(), vis_ref)  # BT.601 luma, as the runtime
    assert s["name"] == "a/p1" and s["det"] is None and s["seg"] is None
    np.testing.assert_allclose(ds[2]["ir"].numpy(), 40000 / 65535, rtol=1e-6)
    batch = collate([ds[0], ds[1]])
    assert batch["ir"].shape == (2, 1, 64, 64) and batch["names"] == ["a/p1", "a/p2"]
    # oversampling
    assert len(FusionPairDataset(recs, AugmentConfig(), repeat=[2, 1, 3])) == 6


def test_load_failure_skips_when_configured(tmp_path):
    root = make_pairs(tmp_path / "ds", ["a", "b"], size=(64, 64))
    recs = scan_dataset(DatasetConfig(root=str(root)), [], None, 255)
    (root / "ir" / "a.png").write_bytes((root / "ir" / "a.png").read_bytes()[:100])  # truncated after the scan
    with pytest.raises(ImageError):
        FusionPairDataset(recs, AugmentConfig())[0]
    ds = FusionPairDataset(recs, AugmentConfig(), on_error="skip")
    with pytest.warns(UserWarning, match="skipping unreadable"):
        s = ds[0]
    assert s["name"].endswith("/b") and ds.load_failures == 1


# ----------------------------------------------------------------------------------------------
# Augmentation keeps images, boxes and maps consistent


def _marked_sample(rng):
    h, w = 120, 160
    boxes = Boxes(np.array([[20, 30, 60, 90], [100, 10, 150, 50], [5, 100, 40, 118]], np.float32), np.array([1, 2, 3]))
    img = np.zeros((h, w), np.float32)
    seg = np.zeros((h, w), np.int64)
    for k, (x1, y1, x2, y2) in enumerate(boxes.boxes.astype(int)):
        img[y1:y2, x1:x2] = (k + 1) / 10
        seg[y1:y2, x1:x2] = k + 1
    return img, boxes, seg


@pytest.mark.parametrize("seed", range(12))
def test_augment_consistency(seed):
    rng = np.random.default_rng(seed)
    img, boxes, seg = _marked_sample(rng)
    cfg = AugmentConfig(crop=(64, 96), hflip=0.5, vflip=0.5, object_crop_prob=0.7, min_box_visibility=0.2, min_box_size=2)
    ir, vis, det, seg2 = augment(img, img * 2, {"fused": boxes, "ir": boxes, "vi": boxes}, seg, rng, cfg)
    assert ir.shape == vis.shape == seg2.shape == (64, 96)
    np.testing.assert_allclose(vis, ir * 2)
    np.testing.assert_array_equal((ir * 10).round().astype(np.int64), seg2)  # image and map moved together
    for b, lab in zip(det["fused"].boxes, det["fused"].labels):
        x1, y1, x2, y2 = np.round(b).astype(int)
        inside = seg2[y1:y2, x1:x2]
        assert inside.size and np.all(inside == lab), (b, lab)  # each box still covers its object
        assert 0 <= x1 < x2 <= 96 and 0 <= y1 < y2 <= 64
    # every object still fully visible in the crop has kept its box
    for lab in np.unique(seg2[seg2 > 0]):
        full = (seg == lab).sum()
        if (seg2 == lab).sum() == full:
            assert lab in det["fused"].labels


def test_augment_pads_small_images_and_centre_crops():
    rng = np.random.default_rng(0)
    img = np.arange(40 * 50, dtype=np.float32).reshape(40, 50) / 2000
    seg = np.ones((40, 50), np.int64)
    ir, _, _, s = augment(img, img, None, seg, rng, AugmentConfig(crop=(64, 64), ignore_index=255))
    assert ir.shape == (64, 64) and (s == 255).sum() == 64 * 64 - 40 * 50
    ir, _, _, _ = augment(img, img, None, None, rng, AugmentConfig(crop=(32, 32), center=True))
    np.testing.assert_array_equal(ir, img[4:36, 9:41])


def test_random_gain_scales_each_modality_on_its_own():
    img = np.full((32, 32), 0.5, np.float32)
    cfg = AugmentConfig(crop=None, hflip=0, vflip=0, gain=(0.2, 1.0), gain_prob=1.0)
    gains = []
    for seed in range(40):
        ir, vis, _, _ = augment(img, img, None, None, np.random.default_rng(seed), cfg)
        assert ir.dtype == np.float32 and np.ptp(ir) == 0 and np.ptp(vis) == 0  # one gain per image
        gains.append((ir[0, 0] / 0.5, vis[0, 0] / 0.5))
    g = np.array(gains)
    assert g.min() >= 0.2 - 1e-6 and g.max() <= 1.0 + 1e-6
    assert np.abs(g[:, 0] - g[:, 1]).max() > 0.1  # independent per modality
    assert (g < 0.45).mean() > 0.3  # log-uniform: half below 0.447
    bright = np.full((8, 8), 0.9, np.float32)
    out, _, _, _ = augment(bright, bright, None, None, np.random.default_rng(0), AugmentConfig(gain=(2.0, 3.0), gain_prob=1.0))
    assert out.max() == 1.0  # clipped to the valid range
    # off (the default) or at validation: untouched
    for c in (AugmentConfig(), AugmentConfig(gain=(0.2, 1.0), gain_prob=1.0, center=True)):
        ir, _, _, _ = augment(img, img, None, None, np.random.default_rng(0), c)
        np.testing.assert_array_equal(ir, img)


def test_object_crops_contain_a_box():
    img = np.zeros((480, 640), np.float32)
    boxes = Boxes(np.array([[600, 440, 630, 470]], np.float32), np.array([1]))
    for seed in range(10):
        _, _, det, _ = augment(
            img,
            img,
            {"fused": boxes, "ir": boxes, "vi": boxes},
            None,
            np.random.default_rng(seed),
            AugmentConfig(crop=(64, 64), hflip=0, object_crop_prob=1.0),
        )
        assert len(det["fused"]) == 1


def test_sample_randomness_is_a_function_of_epoch_and_index(tmp_path):
    root = make_pairs(tmp_path / "ds", ["a", "b", "c"], size=(96, 96))
    recs = scan_dataset(DatasetConfig(root=str(root)), [], None, 255)
    ds = FusionPairDataset(recs, AugmentConfig(crop=(32, 32)), seed=5)
    np.testing.assert_array_equal(ds[(1, 3)]["ir"], ds[(1, 3)]["ir"])
    assert not np.array_equal(ds[(1, 3)]["ir"], ds[(1, 4)]["ir"])


def test_resumable_sampler():
    data = list(range(11))
    s = make_sampler(data, num_replicas=1, rank=0, shuffle=True, seed=3, batch_size=2)
    s.set_position(4, 0)
    full = list(s)
    assert len(full) == 10 and s.batches_per_epoch() == 5 and all(e == 4 for _, e in full)
    s.set_position(4, 2)
    assert list(s) == full[4:] and len(s) == 6
    s.set_position(5, 0)
    assert list(s) != full
    # two replicas split one epoch without overlap
    r0 = make_sampler(data, 2, 0, True, 3, 2)
    r1 = make_sampler(data, 2, 1, True, 3, 2)
    r0.set_position(0)
    r1.set_position(0)
    assert not ({i for i, _ in r0} & {i for i, _ in r1})


# ----------------------------------------------------------------------------------------------
# Config


def test_config_defaults_paper_schedule_balanced_loss():
    cfg = TrainConfig.from_dict({"data": {"datasets": [{"root": "x"}]}})
    assert (cfg.optim.lr, cfg.run.epochs, cfg.data.batch_size) == (1e-3, 40, 2)
    assert (cfg.scheduler.name, cfg.scheduler.factor, cfg.scheduler.patience) == ("plateau", 0.1, 3)
    assert cfg.run.amp == "auto" and cfg.loss.preset == "balanced" and cfg.model.batchnorm_mode() == "warmup"
    w = cfg.loss.resolved()
    assert (w["intensity"], w["gradient"], w["ssim"], w["intensity_target"], w["blend_beta"]) == (10.0, 10.0, 5.0, "blend", 0.75)
    # the paper's preset stays the paper's (alpha1 = 0.1, alpha2 = 6, alpha3 = 1)
    paper = TrainConfig.from_dict({"data": {"datasets": [{"root": "x"}]}, "loss": {"preset": "paper"}}).loss.resolved()
    assert (paper["diversity"], paper["recon_ir"], paper["recon_vis"], paper["ssim"], paper["intensity"]) == (
        0.1,
        6.0,
        1.0,
        1.0,
        0.0,
    )


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['crop'\]"):
        TrainConfig.from_dict({"data": {"datasets": [{"root": "x"}], "crop": 3}})
    with pytest.raises(ConfigError, match="multiples of 32"):
        TrainConfig.from_dict({"data": {"datasets": [{"root": "x"}], "crop_size": 100}})
    with pytest.raises(ConfigError, match="batch >= 2"):
        TrainConfig.from_dict({"data": {"datasets": [{"root": "x"}], "batch_size": 1}})
    with pytest.raises(ConfigError, match="must be a number"):
        TrainConfig.from_dict({"data": {"datasets": [{"root": "x"}]}, "optim": {"lr": "fast"}})
    with pytest.raises(ConfigError, match="loss.preset"):
        TrainConfig.from_dict({"data": {"datasets": [{"root": "x"}]}, "loss": {"preset": "nope"}})
    with pytest.raises(ConfigError, match=r"data.gain must be \[lo, hi\]"):
        TrainConfig.from_dict({"data": {"datasets": [{"root": "x"}], "gain": [1.0, 0.5], "gain_prob": 0.5}})
    with pytest.raises(ConfigError, match="gain_prob is set but data.gain is not"):
        TrainConfig.from_dict({"data": {"datasets": [{"root": "x"}], "gain_prob": 0.5}})
    with pytest.raises(ConfigError, match=r"data.gain_prob must be in \[0, 1\]"):
        TrainConfig.from_dict({"data": {"datasets": [{"root": "x"}], "gain": [0.2, 1.0], "gain_prob": 2}})


def test_load_config_resolves_paths_and_overrides(tmp_path):
    (tmp_path / "c").mkdir()
    f = tmp_path / "c" / "x.toml"
    f.write_text('[run]\nout_dir = "out"\n[[data.datasets]]\nroot = "../data"\n')
    cfg = load_config(f, ["data.crop_size=[64, 96]", "loss.preset=official", "run.max_steps=7"])
    assert cfg.run.out_dir == str((tmp_path / "c" / "out").resolve())
    assert cfg.data.datasets[0].root == str((tmp_path / "data").resolve())
    assert cfg.crop_hw() == (64, 96) and cfg.loss.preset == "official" and cfg.run.max_steps == 7
    assert cfg.loss.resolved()["intensity"] == 20.0
    cfg2 = config_from_dict({"data": {"datasets": [{"root": "d"}]}}, tmp_path)
    assert cfg2.data.datasets[0].root == str((tmp_path / "d").resolve())


def test_shipped_configs_parse():
    folder = Path(__file__).resolve().parents[1] / "training" / "configs"
    files = sorted(folder.glob("*.toml"))
    assert {f.name for f in files} >= {"tiny_cpu.toml", "tsjnet_paper.toml"}
    for f in files:
        cfg = load_config(f)
        assert cfg.data.datasets


def test_yaml_configs(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("data:\n  datasets:\n    - root: d\n  crop_size: 64\n")
    try:
        import yaml  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="PyYAML"):
            load_config(f)
    else:
        cfg = load_config(f)
        assert cfg.crop_hw() == (64, 64) and cfg.data.datasets[0].root == str((tmp_path / "d").resolve())
    with pytest.raises(ConfigError, match="unsupported config format"):
        load_config(_touch(tmp_path / "c.ini"))


def _touch(p: Path) -> Path:
    p.write_text("")
    return p
