"""SynVI: a procedural visible-infrared person data set, written in the real on-disk layouts
of SYSU-MM01, RegDB or LLCM so that the real readers and protocols are exercised.

    python -m fastreid_ext.data.synvi --root DIR --layout sysu|regdb|llcm --num-ids N --seed S [--infrared nir|thermal]

Each identity has a body shape (height, build, head size, stride), a clothing pattern
(top and bottom colours from a small palette, stripes / checks / solid, sleeves, a bag) and a
material per garment. Visible images render the colours under a per-camera illumination,
background and scale. Infrared images of the same identity are single-channel and come from
one of two sensors, as in the real data sets:

- ``nir`` (SYSU-MM01's cameras 3 and 6, active near-infrared): garments reflect mostly by
  their luminance, partly by a data-set-wide non-monotonic function of the dye and by their
  material; skin is mid-bright, hair dark; the illuminator's strength varies per camera.
- ``thermal`` (RegDB's far-infrared camera): temperatures. Skin glows, garments go through a
  stronger non-monotonic mapping of their colour plus their material (colours that differ in
  visible may look alike, and the reverse), on darker, noisier backgrounds. The wider gap.

Pose (offset, scale, stride) varies per image. The output is a pure function of the arguments.
"""
import argparse
import inspect
import json
import os
import shutil
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np
from PIL import Image

PALETTE = np.array([  # a small palette: many identities share colours, so combinations matter
    [200, 30, 30], [30, 60, 190], [30, 150, 50], [230, 210, 40], [20, 20, 20], [235, 235, 235],
    [120, 60, 150], [240, 130, 30], [110, 110, 110], [90, 55, 30], [40, 170, 190], [230, 120, 170],
], dtype=np.float32)
SKIN = np.array([[236, 200, 170], [200, 150, 110], [140, 95, 60], [90, 60, 40]], dtype=np.float32)
SYSU_VISIBLE_CAMS, SYSU_INFRARED_CAMS = (1, 2, 4, 5), (3, 6)
LLCM_CAMS = (1, 2, 3, 4)  # each records both modalities (day / night), as LLCM's nine do


@dataclass
class Identity:
    height: float  # fraction of the image height
    build: float  # torso half-width relative to height
    head: float  # head radius relative to height
    stride: float  # leg spread when walking
    top: np.ndarray  # RGB
    bottom: np.ndarray
    pattern: int  # 0 solid, 1 horizontal stripes, 2 vertical stripes, 3 checks
    pattern_colour: np.ndarray
    period: float  # pattern period relative to height
    long_sleeves: bool
    skin: np.ndarray
    bag: int  # 0 none, 1 left, 2 right
    bag_colour: np.ndarray
    material: np.ndarray  # (3,) thermal offset of top, bottom, bag


@dataclass
class Camera:
    sensor: str  # "visible", "nir" (near-infrared, SYSU-MM01's IR cameras) or "thermal" (RegDB)
    gain: np.ndarray  # (3,) illumination per channel
    background: np.ndarray  # (3,) base colour / intensity
    texture: float  # background texture strength
    scale: float  # apparent person size
    noise: float


def make_identity(rng: np.random.Generator) -> Identity:
    top, bottom, pattern_colour, bag_colour = rng.choice(len(PALETTE), 4, replace=False)
    return Identity(
        height=float(rng.uniform(0.72, 0.92)), build=float(rng.uniform(0.10, 0.17)),
        head=float(rng.uniform(0.085, 0.12)), stride=float(rng.uniform(0.0, 0.06)),
        top=PALETTE[top], bottom=PALETTE[bottom], pattern=int(rng.integers(0, 4)),
        pattern_colour=PALETTE[pattern_colour], period=float(rng.uniform(0.05, 0.12)),
        long_sleeves=bool(rng.random() < 0.5), skin=SKIN[rng.integers(0, len(SKIN))],
        bag=int(rng.choice(3, p=[0.5, 0.25, 0.25])), bag_colour=PALETTE[bag_colour],
        material=rng.uniform(-0.15, 0.15, size=3).astype(np.float32))


def make_camera(rng: np.random.Generator, sensor: str) -> Camera:
    if sensor == "thermal":
        return Camera(sensor, np.ones(3, np.float32), np.full(3, rng.uniform(0.1, 0.3), np.float32),
                      float(rng.uniform(0.02, 0.06)), float(rng.uniform(0.9, 1.05)), float(rng.uniform(0.04, 0.08)))
    if sensor == "nir":  # active illumination: a per-camera gain, mid-grey textured backgrounds
        return Camera(sensor, np.full(3, rng.uniform(0.85, 1.15), np.float32),
                      np.full(3, rng.uniform(0.25, 0.45), np.float32), float(rng.uniform(0.03, 0.08)),
                      float(rng.uniform(0.9, 1.05)), float(rng.uniform(0.03, 0.06)))
    return Camera(sensor, rng.uniform(0.8, 1.2, size=3).astype(np.float32),
                  rng.uniform(0.3, 0.7, size=3).astype(np.float32), float(rng.uniform(0.03, 0.1)),
                  float(rng.uniform(0.85, 1.1)), float(rng.uniform(0.02, 0.05)))


@dataclass(frozen=True)
class InfraredSensor:
    """How an infrared sensor renders a person. A garment of colour c has intensity
    base + luminance · luma(c) + dye · periodic(c) + material · its material offset, where
    periodic is a data-set-wide, non-monotonic function of the dye (so different colours may
    look alike, and the reverse)."""

    base: float
    luminance: float
    dye: float
    material: float  # weight of each garment's material offset
    bag: float  # factor on the bag's colour term
    skin: Tuple[float, float]  # range of the skin intensity, drawn per image
    hair: Optional[float]  # hair intensity; None: the whole head is skin

    def intensity(self, colour: np.ndarray, mapping: np.ndarray) -> float:
        """Intensity of the dye ``colour`` (RGB in [0, 255]) before the garment's material."""
        luma = float(np.dot([0.299, 0.587, 0.114], colour / 255.0))
        phase = float(mapping[:3] @ (colour / 255.0) + mapping[3])
        return self.base + self.luminance * luma + self.dye * (0.5 + 0.5 * np.sin(2 * np.pi * phase))


INFRARED = {
    # SYSU-MM01's cameras 3 and 6, active near-infrared: reflectance, mostly by luminance; hair dark
    "nir": InfraredSensor(base=0.12, luminance=0.65, dye=0.12, material=0.5, bag=1.0, skin=(0.6, 0.72), hair=0.12),
    # RegDB's far-infrared camera: temperatures; skin glows, a stronger dye term
    "thermal": InfraredSensor(base=0.1, luminance=0.55, dye=0.2, material=1.0, bag=0.6, skin=(0.85, 0.95), hair=None),
}
INFRARED_SENSORS = tuple(INFRARED)
LAYOUT_FOLDERS = {"sysu": "SYSU-MM01", "regdb": "RegDB", "llcm": "LLCM"}


def render(person: Identity, camera: Camera, mapping: np.ndarray, rng: np.random.Generator,
           size: Tuple[int, int]) -> np.ndarray:
    """One (H, W, 3) uint8 image of ``person`` seen by ``camera``."""
    height, width = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32) / height  # both in units of image height
    aspect = width / height

    # background: base colour, a camera-specific texture and a vertical gradient
    freq = rng.uniform(4, 12)
    texture = camera.texture * np.sin(2 * np.pi * (freq * x + rng.uniform(0, 1))) * np.cos(2 * np.pi * freq * 0.5 * y)
    canvas = camera.background[None, None, :] + (texture + 0.15 * (y - 0.5))[..., None]

    # pose of this image
    scale = person.height * camera.scale * rng.uniform(0.95, 1.04)
    cx = aspect * (0.5 + rng.uniform(-0.05, 0.05))
    feet = min(0.99, 0.5 + scale / 2 + rng.uniform(-0.04, 0.04))
    top_y = feet - scale
    head_r = person.head * scale
    neck = top_y + 2 * head_r
    waist = top_y + 0.55 * scale
    half = person.build * scale
    spread = person.stride * scale * rng.uniform(-1, 1)

    def box(x0, x1, y0, y1):
        return (x >= x0) & (x < x1) & (y >= y0) & (y < y1)

    head = (x - cx) ** 2 + (y - (top_y + head_r)) ** 2 < head_r ** 2
    torso = box(cx - half, cx + half, neck, waist)
    leg_w = 0.42 * half
    legs = box(cx - half + spread - 0.02, cx - half + spread + leg_w, waist, feet) | \
        box(cx + half - spread - leg_w, cx + half - spread + 0.02, waist, feet)
    arm_w = 0.3 * half
    arms = box(cx - half - arm_w, cx - half, neck, waist + 0.05 * scale) | \
        box(cx + half, cx + half + arm_w, neck, waist + 0.05 * scale)
    sleeves = arms & (y < (neck + 0.6 * (waist - neck) if not person.long_sleeves else waist + 1))
    hands = arms & ~sleeves
    bag = np.zeros_like(head)
    if person.bag:
        side = -1 if person.bag == 1 else 1
        bx = cx + side * (half + arm_w + 0.06 * scale)
        bag = box(bx - 0.06 * scale, bx + 0.06 * scale, waist - 0.1 * scale, waist + 0.1 * scale)

    ty, tx = (y - neck) / (person.period * scale), (x - cx) / (person.period * scale)
    stripes = {0: np.zeros_like(head), 1: (np.floor(ty) % 2 == 0), 2: (np.floor(tx) % 2 == 0),
               3: ((np.floor(ty) + np.floor(tx)) % 2 == 0)}[person.pattern]

    if camera.sensor == "visible":
        top, bottom, pattern, bag_value, skin = (c / 255.0 for c in (
            person.top, person.bottom, person.pattern_colour, person.bag_colour, person.skin))
        hair = 0.1
    else:
        sensor = INFRARED[camera.sensor]
        skin = rng.uniform(*sensor.skin)
        top = sensor.intensity(person.top, mapping) + sensor.material * person.material[0]
        pattern = sensor.intensity(person.pattern_colour, mapping) + sensor.material * person.material[0]
        bottom = sensor.intensity(person.bottom, mapping) + sensor.material * person.material[1]
        bag_value = sensor.bag * sensor.intensity(person.bag_colour, mapping) + sensor.material * person.material[2]
        hair = sensor.hair
    for mask, value in ((legs, bottom), (torso, top), (torso & stripes, pattern), (sleeves, top), (hands, skin),
                        (head, skin), (bag, bag_value)):
        canvas[mask] = value
    if hair is not None:
        canvas[head & (y < top_y + 0.7 * head_r)] = hair
    canvas = canvas * camera.gain[None, None, :]  # illumination (visible), illuminator (nir); thermal: 1

    canvas = canvas + rng.normal(0, camera.noise, size=canvas.shape)
    image = np.clip(canvas * 255, 0, 255).astype(np.uint8)
    if camera.sensor != "visible":  # single-channel sensor, stored as 3 identical channels
        image = np.repeat(image[..., :1], 3, axis=2)
    return image


def _world(num_ids: int, seed: int):
    rng = np.random.default_rng(seed)
    mapping = np.concatenate([rng.uniform(-1.5, 1.5, size=3), rng.uniform(0, 1, size=1)]).astype(np.float32)
    identities = [make_identity(rng) for _ in range(num_ids)]
    return rng, mapping, identities


def write_sysu(root: str, num_ids: int, seed: int, images_per_cam: int = 6,
               size: Tuple[int, int] = (128, 64), infrared: str = "nir") -> Dict:
    """Write ``root/SYSU-MM01`` (cam1..cam6/<id>/NNNN.jpg, exp/{train,val,test}_id.txt); cameras
    3 and 6 are ``infrared`` sensors ("nir" like the real ones, or "thermal": a harder gap)."""
    if num_ids < 4:
        raise ValueError(f"--num-ids must be >= 4 for the SYSU layout, got {num_ids}")
    rng, mapping, identities = _world(num_ids, seed)
    cameras = {c: make_camera(rng, infrared if c in SYSU_INFRARED_CAMS else "visible")
               for c in SYSU_VISIBLE_CAMS + SYSU_INFRARED_CAMS}
    base = os.path.join(root, "SYSU-MM01")
    pids = list(range(1, num_ids + 1))
    num_test = max(2, round(0.3 * num_ids))
    num_val = max(1, round(0.1 * num_ids))
    order = rng.permutation(pids).tolist()
    test_ids, val_ids, train_ids = sorted(order[:num_test]), sorted(order[num_test:num_test + num_val]), \
        sorted(order[num_test + num_val:])
    counts = {"visible": 0, "infrared": 0}
    for pid, person in zip(pids, identities):
        # like SYSU-MM01, not every identity is seen by every camera (but by >= 1 of each modality)
        vis = [c for c in SYSU_VISIBLE_CAMS if c == 1 or rng.random() > 0.1]
        ir = list(SYSU_INFRARED_CAMS) if rng.random() > 0.2 else [int(rng.choice(SYSU_INFRARED_CAMS))]
        for cam in vis + ir:
            folder = os.path.join(base, f"cam{cam}", f"{pid:04d}")
            os.makedirs(folder, exist_ok=True)
            for k in range(images_per_cam):
                Image.fromarray(render(person, cameras[cam], mapping, rng, size)).save(
                    os.path.join(folder, f"{k + 1:04d}.jpg"), quality=92)
            counts["infrared" if cam in SYSU_INFRARED_CAMS else "visible"] += images_per_cam
    for cam in SYSU_VISIBLE_CAMS + SYSU_INFRARED_CAMS:
        os.makedirs(os.path.join(base, f"cam{cam}"), exist_ok=True)
    os.makedirs(os.path.join(base, "exp"), exist_ok=True)
    for name, ids in (("train", train_ids), ("val", val_ids), ("test", test_ids)):
        with open(os.path.join(base, "exp", f"{name}_id.txt"), "w") as f:
            f.write(",".join(str(i) for i in ids) + "\n")
    return {"layout": "sysu", "num_ids": num_ids, "seed": seed, "infrared": infrared, "size": list(size),
            "images_per_cam": images_per_cam, "train_ids": len(train_ids) + len(val_ids), "test_ids": len(test_ids),
            "images": counts}


def write_regdb(root: str, num_ids: int, seed: int, images_per_cam: int = 10,
                size: Tuple[int, int] = (128, 64), infrared: str = "thermal") -> Dict:
    """Write ``root/RegDB`` (Visible/<id>/*.bmp, Thermal/<id>/*.bmp, idx/*_{1..10}.txt); the
    ``Thermal`` camera is an ``infrared`` sensor ("thermal" like the real one, or "nir")."""
    if num_ids < 4:
        raise ValueError(f"--num-ids must be >= 4 for the RegDB layout, got {num_ids}")
    rng, mapping, identities = _world(num_ids, seed)
    visible_cam, thermal_cam = make_camera(rng, "visible"), make_camera(rng, infrared)
    base = os.path.join(root, "RegDB")
    files: Dict[str, Dict[int, List[str]]] = {"visible": {}, "thermal": {}}
    for pid, person in enumerate(identities, 1):
        for modality, folder, cam, tag in (("visible", "Visible", visible_cam, "v"),
                                           ("thermal", "Thermal", thermal_cam, "t")):
            os.makedirs(os.path.join(base, folder, str(pid)), exist_ok=True)
            files[modality][pid] = []
            for k in range(images_per_cam):
                rel = f"{folder}/{pid}/person_front_{tag}_{pid * 10 + k:05d}_{k + 1}.bmp"
                Image.fromarray(render(person, cam, mapping, rng, size)).save(os.path.join(base, rel))
                files[modality][pid].append(rel)
    os.makedirs(os.path.join(base, "idx"), exist_ok=True)
    half = num_ids // 2
    for trial in range(1, 11):
        order = np.random.default_rng([seed, trial]).permutation(np.arange(1, num_ids + 1))
        splits = {"train": sorted(order[:half].tolist()), "test": sorted(order[half:].tolist())}
        for split, ids in splits.items():
            for modality in ("visible", "thermal"):
                with open(os.path.join(base, "idx", f"{split}_{modality}_{trial}.txt"), "w") as f:
                    for label, pid in enumerate(ids):
                        for rel in files[modality][pid]:
                            f.write(f"{rel} {label if split == 'train' else pid}\n")
    return {"layout": "regdb", "num_ids": num_ids, "seed": seed, "infrared": infrared, "size": list(size),
            "images_per_cam": images_per_cam, "images": {m: images_per_cam * num_ids for m in files}}


def write_llcm(root: str, num_ids: int, seed: int, images_per_cam: int = 4,
               size: Tuple[int, int] = (128, 64), infrared: str = "nir") -> Dict:
    """Write ``root/LLCM`` (vis/<id>/*.jpg, nir/<id>/*.jpg with the camera as ``_cNN`` in the
    file name, idx/{train,test}_{vis,nir}.txt): like LLCM, each of its cameras records visible
    images by day and ``infrared`` ones by night (one sensor of each kind per camera)."""
    if num_ids < 4:
        raise ValueError(f"--num-ids must be >= 4 for the LLCM layout, got {num_ids}")
    rng, mapping, identities = _world(num_ids, seed)
    cams = LLCM_CAMS
    sensors = {(m, c): make_camera(rng, "visible" if m == "vis" else infrared) for m in ("vis", "nir") for c in cams}
    base = os.path.join(root, "LLCM")
    order = rng.permutation(np.arange(1, num_ids + 1))
    test_ids = set(order[:max(2, round(0.3 * num_ids))].tolist())
    lines: Dict[str, List[str]] = {f"{split}_{m}": [] for split in ("train", "test") for m in ("vis", "nir")}
    train_label = {pid: label for label, pid in enumerate(sorted(set(range(1, num_ids + 1)) - test_ids))}
    for pid, person in enumerate(identities, 1):
        split = "test" if pid in test_ids else "train"
        for modality in ("vis", "nir"):
            seen = [c for c in cams if c == cams[0] or rng.random() > 0.3]  # not every camera sees everyone
            os.makedirs(os.path.join(base, modality, f"{pid:04d}"), exist_ok=True)
            for cam in seen:
                for k in range(images_per_cam):
                    rel = f"{modality}/{pid:04d}/{pid:04d}_c{cam:02d}_s{seed:02d}_f{k:04d}_{modality}.jpg"
                    Image.fromarray(render(person, sensors[(modality, cam)], mapping, rng, size)).save(
                        os.path.join(base, rel), quality=92)
                    lines[f"{split}_{modality}"].append(f"{rel} {train_label[pid] if split == 'train' else pid}")
    os.makedirs(os.path.join(base, "idx"), exist_ok=True)
    for name, entries in lines.items():
        with open(os.path.join(base, "idx", f"{name}.txt"), "w") as f:
            f.write("\n".join(entries) + "\n")
    return {"layout": "llcm", "num_ids": num_ids, "seed": seed, "infrared": infrared, "size": list(size),
            "images_per_cam": images_per_cam, "train_ids": len(train_label), "test_ids": len(test_ids),
            "images": {m: len(lines[f"train_{m}"]) + len(lines[f"test_{m}"]) for m in ("vis", "nir")}}


WRITERS = {"sysu": write_sysu, "regdb": write_regdb, "llcm": write_llcm}


def generate(root: str, layout: str, num_ids: int, seed: int = 0, images_per_cam: int = 0,
             size: Tuple[int, int] = (128, 64), infrared: str = "") -> Dict:
    """Write SynVI under ``root`` in ``layout``; returns (and stores as SYNVI.json) a summary.
    ``infrared`` is the infrared sensor, "nir" or "thermal"; empty: the real data set's
    (SYSU-MM01 and LLCM: near-infrared, RegDB: thermal)."""
    if layout not in WRITERS:
        raise ValueError(f"--layout must be one of {sorted(WRITERS)}, got {layout!r}")
    if infrared and infrared not in INFRARED_SENSORS:
        raise ValueError(f"--infrared must be one of {INFRARED_SENSORS}, got {infrared!r}")
    kwargs = {"images_per_cam": images_per_cam} if images_per_cam > 0 else {}
    if infrared:
        kwargs["infrared"] = infrared
    summary = WRITERS[layout](root, num_ids, seed, size=size, **kwargs)
    folder = os.path.join(root, LAYOUT_FOLDERS[layout])
    with open(os.path.join(folder, "SYNVI.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary


def ensure(root: str, layout: str, num_ids: int, seed: int = 0, infrared: str = "") -> Dict:
    """SynVI under ``root`` as :func:`generate` writes it with these arguments (and the default
    image size and count): kept when its SYNVI.json says so, else (re)written. A folder without
    SYNVI.json is not SynVI's and is never touched."""
    folder = os.path.join(root, LAYOUT_FOLDERS[layout])
    defaults = inspect.signature(WRITERS[layout]).parameters
    wanted = {"layout": layout, "num_ids": num_ids, "seed": seed,
              "infrared": infrared or defaults["infrared"].default, "size": list(defaults["size"].default),
              "images_per_cam": defaults["images_per_cam"].default}
    stamp = os.path.join(folder, "SYNVI.json")
    if os.path.isdir(folder):
        if not os.path.isfile(stamp):
            raise FileExistsError(f"{folder} exists but is not a SynVI folder (no SYNVI.json); "
                                  f"choose another root for the generated data")
        with open(stamp) as f:
            summary = json.load(f)
        if all(summary.get(k) == v for k, v in wanted.items()):
            return summary
        shutil.rmtree(folder)  # an older or different SynVI: written again
    return generate(root, layout, num_ids, seed, infrared=infrared)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="directory to write SYSU-MM01/, RegDB/ or LLCM/ into")
    parser.add_argument("--layout", choices=sorted(WRITERS), default="sysu")
    parser.add_argument("--num-ids", type=int, default=100, help="number of identities")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images-per-cam", type=int, default=0,
                        help="images per identity and camera (default: 6 for sysu, 10 for regdb, 4 for llcm)")
    parser.add_argument("--infrared", choices=INFRARED_SENSORS, default="",
                        help="infrared sensor (default: the real data set's, nir for sysu and llcm, thermal for regdb)")
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--width", type=int, default=64)
    args = parser.parse_args(argv)
    summary = generate(args.root, args.layout, args.num_ids, args.seed, args.images_per_cam,
                       (args.height, args.width), args.infrared)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
