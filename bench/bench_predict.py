"""Prediction latency: from an image file on disk to P(cat), decoding included.

    python bench/bench_predict.py [--repeats 25]

Images (written to a temporary folder): a synthetic 12-megapixel JPEG (4000×3000, smooth noise
plus fine grain, quality 90, a few MB like a phone photo) and a 64×64 PNG. The pipeline is the
one the CLI and the dashboard use: ``catdnn.images.prepare_image`` (Pillow's JPEG draft mode
decodes at reduced scale) + ``image_to_input`` + ``Model.predict_proba``. For comparison, the same
JPEG fully decoded (``load_image``) then resized. The model is the ``deep`` preset trained on the
real dataset if it is found, else its initial weights (the latency is the same).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import machine, median, set_threads, table
from PIL import Image

from catdnn.config import PRESETS
from catdnn.images import image_to_input, load_image, prepare_image
from catdnn.model import Model
from catdnn.network import init_params


def make_model() -> tuple[Model, str]:
    try:
        from _common import load_data

        from catdnn.train import fit

        return fit(PRESETS["deep"], load_data()), "deep preset trained on the dataset"
    except SystemExit:
        return Model(params=init_params(PRESETS["deep"].layers), config=PRESETS["deep"]), "deep preset, initial weights"


def make_jpeg(path: Path, size=(4000, 3000), seed=0) -> None:
    rng = np.random.default_rng(seed)
    w, h = size
    smooth = Image.fromarray(rng.integers(0, 256, (h // 100, w // 100, 3), dtype=np.uint8)).resize(
        size, Image.Resampling.BICUBIC)
    a = np.asarray(smooth, dtype=np.int16) + rng.integers(-12, 13, (h, w, 1), dtype=np.int16)
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(path, quality=90)


def bench(fn, repeats):
    fn()  # warm-up (imports, caches)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return median(ts), min(ts), max(ts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=25)
    ap.add_argument("--threads", type=int, help="limit BLAS threads (threadpoolctl); default: unchanged")
    args = ap.parse_args(argv)
    set_threads(args.threads)
    model, model_note = make_model()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp) / "photo_12mp.jpg"
        make_jpeg(big)
        small = Path(tmp) / "cat_64.png"
        Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(small)
        arr64 = np.asarray(Image.open(small).convert("RGB"))
        with Image.open(big) as im:
            info = f"{im.size[0]}×{im.size[1]} JPEG, {big.stat().st_size / 1e6:.1f} MB"
        print(f"model: {model_note}; image: {info}; median of {args.repeats} runs\n")

        def full_pipeline(path):
            return float(model.predict_proba(image_to_input(prepare_image(path)))[0])

        def no_draft(path):
            img = load_image(path).resize((64, 64), Image.Resampling.LANCZOS)
            return float(model.predict_proba(image_to_input(img))[0])

        x = image_to_input(prepare_image(big))
        cases = [
            ("12-MP JPEG on disk -> P(cat) (prepare_image, draft mode)", lambda: full_pipeline(big), 50e-3),
            ("  of which decode + resize (prepare_image)", lambda: prepare_image(big), None),
            ("  of which the network (predict_proba on (12288, 1))", lambda: model.predict_proba(x), None),
            ("12-MP JPEG, full decode without draft (load_image + resize)", lambda: no_draft(big), None),
            ("64×64 PNG on disk -> P(cat)", lambda: full_pipeline(small), 1e-3),
            ("64×64 image in memory (array) -> P(cat)", lambda: float(model.predict_proba(image_to_input(arr64))[0]),
             1e-3),
        ]
        rows, verdicts = [], []
        for name, fn, target in cases:
            med, lo, hi = bench(fn, args.repeats)
            rows.append([name, f"{med * 1e3:.3f}", f"{lo * 1e3:.3f}", f"{hi * 1e3:.3f}",
                         "" if target is None else f"< {target * 1e3:g} ms: {'MET' if med < target else 'MISSED'}"])
            if target is not None:
                verdicts.append(med < target)
        print(table(["case", "median ms", "min ms", "max ms", "target"], rows))
        p_big, p_small = full_pipeline(big), full_pipeline(small)
        print(f"\nP(cat): 12-MP photo {p_big:.4f}, 64×64 image {p_small:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
