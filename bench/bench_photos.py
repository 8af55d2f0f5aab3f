"""Your own photos as a dataset (issue 10 §6): importing thousands of real photo files, and one epoch
of training on m = 20 000 images.

    python bench/bench_photos.py [--photos 5000] [--m 20000] [--skip-import] [--skip-epoch]

1. ``--photos`` real JPEG and PNG files (3 in 4 JPEG; sizes 160×96 to 640×512, smooth gradients
   plus grain, so they compress like photos) are written to a temporary folder and imported with
   ``catdnn.photos.import_photos``: from the folder (decoding with 1 and with 2 threads), and from
   a zip of the same files (an upload's path). Photos per second and the peak memory are printed.
2. One epoch on ``--m`` synthetic 64×64 images (X of shape (12288, m), float64): what the engine
   picks by itself (``Trainer(..., solver="auto")``) for a full batch and for mini-batches of 64,
   the time of one epoch on each, and the peak memory. The Gram path's m×m matrix is built only
   where the engine picks it for the run asked (``bench_scaling.py`` times that build).
"""

from __future__ import annotations

import argparse
import io
import math
import resource
import shutil
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from _common import machine
from PIL import Image

from catdnn import photos
from catdnn.config import TrainConfig
from catdnn.solvers import gram_pays_off
from catdnn.train import Trainer

N_X = 12288


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_photos(folder: Path, n: int, seed: int = 0) -> int:
    """``n`` photo files in folder/cat and folder/non-cat (60 % cats); returns their bytes in all."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(-8, 9, (512, 640, 3), dtype=np.int16)
    total = 0
    for i in range(n):
        cls = "cat" if i % 5 < 3 else "non-cat"
        w = int(rng.integers(160, 641))
        h = int(w * rng.uniform(0.6, 0.8))
        ramp = np.linspace(0, 1, 16, dtype=np.float32)
        small = rng.uniform(0, 255, 3) + 80 * (ramp[:, None, None] * rng.uniform(-1, 1, 3))  # 16×1×3 gradient
        small = small + 80 * ramp[None, :, None] * rng.uniform(-1, 1, 3)  # 16×16×3
        img = np.asarray(Image.fromarray(np.clip(small, 0, 255).astype(np.uint8)).resize((w, h)), dtype=np.int16)
        img = img + noise[:h, :w]  # grain, so the files compress like photos
        fmt, ext = ("PNG", "png") if i % 4 == 3 else ("JPEG", "jpg")
        path = folder / cls / f"{i:05d}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, format=fmt)
        total += path.stat().st_size
    return total


def bench_import(n: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-photos-"))
    try:
        t0 = time.perf_counter()
        size = make_photos(tmp / "photos", n)
        print(f"made {n:,} photo files ({size / 1e6:.0f} MB, 3 in 4 JPEG) in {time.perf_counter() - t0:.1f} s")
        rows = []
        for workers in (1, 2):
            home = tmp / f"home{workers}"
            t0 = time.perf_counter()
            info = photos.import_photos(tmp / "photos", home=home, workers=workers)
            dt = time.perf_counter() - t0
            rows.append((f"folder, {workers} decoding thread(s)", dt, info))
        t0 = time.perf_counter()
        info = photos.import_photos(tmp / "photos", home=tmp / "home2")
        rows.append(("folder again (the cache)", time.perf_counter() - t0, info))
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in sorted((tmp / "photos").rglob("*.*")):
                zf.write(p, p.relative_to(tmp / "photos").as_posix())
        data = buf.getvalue()
        t0 = time.perf_counter()
        # the upload path, with a folder's file limit (an upload holds at most photos.MAX_UPLOAD_FILES)
        info = photos.import_photos(data, name="upload", home=tmp / "home3", max_files=photos.MAX_FILES)
        rows.append((f"zip upload ({len(data) / 1e6:.0f} MB), 2 threads", time.perf_counter() - t0, info))
        print(f"\n### Importing {n:,} photos\n")
        print("| import | seconds | photos/s | train + test | skipped |")
        print("|---|---|---|---|---|")
        for what, dt, info in rows:
            print(f"| {what} | {dt:.2f} | {n / dt:,.0f} | {info.m_train:,} + {info.m_test:,} | {len(info.skipped)} |")
        h5 = sum(f.stat().st_size for f in info.folder.iterdir())
        print(f"\nthe cached HDF5 pair: {h5 / 1e6:.0f} MB; peak RSS so far {peak_mb():,.0f} MB")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_epoch(m: int) -> None:
    rng = np.random.default_rng(0)
    m_test = 500
    print(f"\n### One epoch on m = {m:,} synthetic images (X: {N_X * m * 8 / 1e9:.2f} GB float64)\n")
    X = rng.random((N_X, m))
    Y = (rng.random((1, m)) < 0.5).astype(np.float64)
    Xt, Yt = rng.random((N_X, m_test)), (rng.random((1, m_test)) < 0.5).astype(np.float64)
    print(f"data made; peak RSS {peak_mb():,.0f} MB")
    layers = (N_X, 20, 7, 5, 1)
    print("| run | engine's solver (auto) | iterations in the epoch | epoch s | peak RSS MB |")
    print("|---|---|---|---|---|")
    reasons = []
    for label, batch in (("full batch", 0), ("mini-batches of 64", 64)):
        iterations = 1 if not batch else math.ceil(m / batch)
        config = TrainConfig(layers=layers, iterations=iterations, init="xavier", batch_size=batch).validate()
        t0 = time.perf_counter()
        trainer = Trainer(config, X, Y, Xt, Yt, cost_every=iterations)
        for _ in trainer.run():
            pass
        dt = time.perf_counter() - t0
        reasons.append(f"{label}: {trainer.solver_reason}")
        print(f"| {label} | {trainer.solver_name} | {iterations} | {dt:.2f} | {peak_mb():,.0f} |")
    print("\n" + "\n".join(reasons))
    for its in (2500, 100):
        pays = gram_pays_off(N_X, m, layers, its)
        print(f"\nfull batch, {its} iterations: gram_pays_off -> {pays}"
              + (f" (its m×m matrix: {8 * m * m / 1e9:.1f} GB)" if pays else ""))
    print(f"mini-batches of 64, 2500 iterations: gram_pays_off -> {gram_pays_off(N_X, m, layers, 2500, batch=64)}")
    print(f"m = {2 * N_X + 1:,} (over 2·n_x): gram_pays_off -> {gram_pays_off(N_X, 2 * N_X + 1, layers, 10**6)}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=5000)
    ap.add_argument("--m", type=int, default=20_000)
    ap.add_argument("--skip-import", action="store_true")
    ap.add_argument("--skip-epoch", action="store_true")
    args = ap.parse_args(argv)
    print(f"machine: {machine()}")
    if not args.skip_import:
        bench_import(args.photos)
    if not args.skip_epoch:
        bench_epoch(args.m)


if __name__ == "__main__":
    main()
