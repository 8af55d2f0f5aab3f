"""Model files: a trained network saved as ``.npz`` data, never as pickled code.

A file holds one float64 array per parameter (``W1``, ``b1``, ``W2``, ...) and ``meta``, a 0-d
unicode array with a JSON document: the format tag, layer sizes, configuration, class names,
cost history and accuracies. A convolutional net's file also names its architecture (``arch``, in
the JSON and in its configuration); its arrays are in its configuration's dtype (float32 or
float64), the conv layers first (:func:`catdnn.cnn.param_shapes`). Loading uses
``allow_pickle=False`` and checks every name, dtype and shape against the layers or the
architecture before the model is used. Files without ``arch`` (older ones) are MLPs.

A network trained with batch norm (``config.batch_norm``) also holds, for each normalised layer l
(an MLP's hidden layers; a CNN's conv layers, then its dense head's hidden layers),
``gamma{l}``, ``beta{l}`` (learned) and ``mu{l}``, ``var{l}`` (the running averages prediction
uses), each of shape ``(n_l, 1)`` (units or channels) in the parameters' dtype, and
``"bn": {"momentum", "epsilon"}`` in the JSON. A file
whose settings and arrays disagree on batch norm is refused, as are negative variances.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .cnn import param_shapes
from .config import TrainConfig
from .data import COURSE_NAME, N_X
from .errors import ConfigError, ModelFileError
from .model import Model
from .network import BatchNorm

#: A batch-normalised layer's arrays in a model file, ``name{l}`` for hidden layer l.
BN_ARRAYS = ("gamma", "beta", "mu", "var")

FORMAT = "catdnn-model"
FORMAT_VERSION = 1
#: Model files larger than this are refused before reading (the biggest allowed net is ~512 MiB).
MAX_FILE_BYTES = 600 * 1024**2
#: Most points a file keeps of each curve (cost, accuracies). The app records about 500 and 100; a
#: longer one (``python -m catdnn train --print-every 1`` over up to 1 000 000 iterations) is saved
#: thinned to at most this many, evenly spaced, its last point kept. A file's curves are refused
#: beyond it, and beyond one point per iteration of its settings (+ 1: the accuracies after the
#: last update).
MAX_HISTORY_POINTS = 20_000
#: Largest ``meta`` member (its ``.npy``: 4 bytes per character of JSON) read at all, checked from the
#: zip directory before it is read: 16 MiB. Measured: a deep-preset model with a point of each curve
#: at each of its 2 500 iterations has a 0.6 MB ``meta``, a CNN-preset one (350 iterations) 0.09 MB;
#: full curves of MAX_HISTORY_POINTS at full precision, 6.4 MB. A forged file just under the limit
#: costs about 100 MB and 0.5 s to refuse; one of 677 KB whose ``meta`` held 10 million history
#: points made the loader take 2.3 GB and 9.5 s.
MAX_META_BYTES = 16 * 1024**2


def _metadata(model: Model) -> dict:
    """The JSON document stored in a model file's ``meta`` array."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "layers": list(model.layers),
        "arch": model.config.arch,
        "config": model.config.to_dict(),
        "classes": list(model.classes),
        "history": [[int(i), float(c)] for i, c in _thin(model.history)],
        "accuracy_history": [
            [int(i), _opt(a), _opt(b)] for i, a, b in _thin(model.accuracy_history)
        ],
        "iterations_done": int(model.iterations_done),
        "train_accuracy": _opt(model.train_accuracy),
        "test_accuracy": _opt(model.test_accuracy),
        "status": model.status,
        "train_seconds": float(model.train_seconds),
        "created": model.created,
        "dataset": model.dataset,
        **({"bn": {"momentum": float(model.bn.momentum), "epsilon": float(model.bn.epsilon)}} if model.bn else {}),
    }


def _opt(x):
    return None if x is None else float(x)


def _thin(points: list) -> list:
    """At most MAX_HISTORY_POINTS of ``points``, evenly spaced, the last one kept."""
    if len(points) <= MAX_HISTORY_POINTS:
        return points
    kept = points[::-(-len(points) // MAX_HISTORY_POINTS)]
    kept[-1] = points[-1]
    return kept


def save_model(model: Model, file) -> None:
    """Write ``model`` to ``file`` (a path or a binary file object) as ``.npz``."""
    arrays = {}
    dtype = np.dtype(model.config.dtype)  # float64, or a CNN's float32
    for l, (W, b) in enumerate(model.params, start=1):
        arrays[f"W{l}"] = np.asarray(W, dtype=dtype)
        arrays[f"b{l}"] = np.asarray(b, dtype=dtype)
    if model.bn is not None:
        for l, ((gamma, beta), (mu, var)) in enumerate(zip(model.bn.params, model.bn.running), start=1):
            for name, a in zip(BN_ARRAYS, (gamma, beta, mu, var)):
                arrays[f"{name}{l}"] = np.asarray(a, dtype=dtype)
    arrays["meta"] = np.array(json.dumps(_metadata(model)))
    if isinstance(file, (str, Path)):
        # Written next to the target and renamed into place only when complete: a full disk or an
        # interrupted save never leaves a damaged file, nor destroys the model that was there.
        path = Path(file)
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent or ".")
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.chmod(tmp, 0o644)  # mkstemp makes it private; a model file is an ordinary file
            os.replace(tmp, path)
            tmp = None
        except OSError as exc:
            raise ModelFileError(f"cannot write the model to {path}: {exc.strerror or exc}") from None
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
    else:
        np.savez(file, **arrays)


def model_to_bytes(model: Model) -> bytes:
    """The ``.npz`` file's bytes (for a download button)."""
    buf = io.BytesIO()
    save_model(model, buf)
    return buf.getvalue()


def load_model(file, name: str | None = None) -> Model:
    """Read and check a model file: a path, a binary file object, or ``bytes``.

    Raises :class:`ModelFileError` naming the file and the problem when it is not a readable
    catdnn model for 64×64 RGB input (12288 inputs).
    """
    label = name or (str(file) if isinstance(file, (str, Path)) else "the uploaded file")
    if isinstance(file, (bytes, bytearray, memoryview)):
        file = io.BytesIO(bytes(file))
    if isinstance(file, (str, Path)):
        path = Path(file)
        if path.is_dir():
            raise ModelFileError(f"{label}: is a folder, not a model file")
        if not path.exists():
            raise ModelFileError(f"{label}: no such model file")
        if not path.is_file():
            raise ModelFileError(f"{label}: not a regular file (a device or a pipe?), not a model file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ModelFileError(f"{label}: too large for a catdnn model ({path.stat().st_size:,} bytes)")
    head = _head(file)
    if head.startswith(b"\x93NUMPY"):
        raise ModelFileError(f"{label}: a single .npy array, not a catdnn model (.npz)")
    if not head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        what = "an empty file" if not head else "not a .npz (zip) file"
        raise ModelFileError(f"{label}: not a readable .npz model file ({what})")
    try:
        _check_members(file, label)
        with np.load(file, allow_pickle=False) as npz:
            arrays = {k: _read_array(npz, k, label) for k in npz.files}
        return _model_from_arrays(arrays, label)  # inside the try: whatever a crafted file does, one clear error
    except ModelFileError:
        raise
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise ModelFileError(
                f"{label}: holds Python objects (pickled data), which catdnn never loads: "
                "a model file must contain plain numeric arrays"
            ) from None
        raise ModelFileError(f"{label}: not a valid .npz model file ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise ModelFileError(f"{label}: not a readable .npz model file ({type(exc).__name__}: {exc})") from None
    except Exception as exc:
        raise ModelFileError(f"{label}: not a readable .npz model file ({type(exc).__name__})") from None


def _check_members(file, label: str) -> None:
    """Refuse, from the zip directory and the .npy headers, members that would expand too far.

    A small compressed upload could otherwise inflate to gigabytes (a zip bomb), or a forged
    ``.npy`` header make numpy allocate an array far larger than the data behind it.
    """
    pos = None if isinstance(file, (str, Path)) else file.tell()
    try:
        with zipfile.ZipFile(file) as z:
            infos = z.infolist()
            total = sum(i.file_size for i in infos)
            if total > MAX_FILE_BYTES:
                raise ModelFileError(
                    f"{label}: too large for a catdnn model: its arrays would take {total:,} bytes "
                    f"(the limit is {MAX_FILE_BYTES:,})"
                )
            for info in infos:
                if info.filename in ("meta", "meta.npy") and info.file_size > MAX_META_BYTES:
                    raise ModelFileError(
                        f"{label}: its 'meta' entry takes {info.file_size:,} bytes, far more than a catdnn model's "
                        f"settings and curves (the limit is {MAX_META_BYTES:,}): the file is damaged or forged"
                    )
                if not info.filename.endswith(".npy"):
                    continue
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
                    elif version == (2, 0):
                        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
                    else:  # np.load reads version 3.0 too, but catdnn never writes it: refused unchecked
                        raise ModelFileError(
                            f"{label}: array {info.filename[:-4]!r} is in .npy format version "
                            f"{'.'.join(map(str, version))}, which catdnn never writes (1.0 and 2.0 only)"
                        )
                if dtype.hasobject:
                    continue  # refused below as pickled data, without unpickling
                need = int(np.prod(shape, dtype=object)) * dtype.itemsize
                if need > info.file_size:
                    raise ModelFileError(
                        f"{label}: array {info.filename[:-4]!r} claims shape {shape} ({need:,} bytes) but "
                        f"holds only {info.file_size:,} bytes: the file is damaged"
                    )
    finally:
        if pos is not None:
            file.seek(pos)


def _head(file) -> bytes:
    """The first bytes of a path or a seekable file object (its position is restored)."""
    if isinstance(file, (str, Path)):
        with open(file, "rb") as f:
            return f.read(8)
    pos = file.tell()
    head = file.read(8)
    file.seek(pos)
    return head


def _read_array(npz, key: str, label: str) -> np.ndarray:
    try:
        return npz[key]
    except ValueError:
        raise
    except Exception as exc:
        raise ModelFileError(f"{label}: array {key!r} is damaged ({type(exc).__name__}: {exc})") from None


def _config(cfg: dict, layers: list, label: str) -> TrainConfig:
    try:
        return TrainConfig.from_dict({**cfg, "layers": tuple(layers)}).validate()
    except (ConfigError, TypeError, ValueError, OverflowError) as exc:
        raise ModelFileError(f"{label}: invalid training settings ({exc})") from None


def _model_from_arrays(arrays: dict, label: str) -> Model:
    if "meta" not in arrays:
        raise ModelFileError(
            f"{label}: not a catdnn model (no 'meta' entry; found {', '.join(sorted(arrays)) or 'nothing'})"
        )
    meta_arr = arrays["meta"]
    # a member stored without ".npy" comes back from np.load as raw bytes, not an array
    if not isinstance(meta_arr, np.ndarray) or meta_arr.shape != () or meta_arr.dtype.kind != "U":
        raise ModelFileError(f"{label}: not a catdnn model ('meta' is not a text entry)")
    meta = _parse_meta(str(meta_arr), label)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{label}: not a catdnn model (format tag missing or wrong)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{label}: model format version {meta.get('format_version')!r} is not supported "
            f"(this catdnn reads version {FORMAT_VERSION})"
        )
    layers = meta.get("layers")
    if (
        not isinstance(layers, list)
        or len(layers) < 2
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in layers)
    ):
        raise ModelFileError(f"{label}: invalid layer list {layers!r}")
    cfg = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    arch_text = cfg.get("arch", "")
    if meta.get("arch", arch_text) != arch_text:
        raise ModelFileError(f"{label}: its architecture {meta.get('arch')!r} differs from its settings' {arch_text!r}")
    if arch_text:  # a convolutional net: the settings first, as they give the shapes
        config = _config(cfg, layers, label)
        if list(config.layers) != layers:
            raise ModelFileError(f"{label}: layer list {layers} does not match the architecture {config.arch!r} "
                                 f"(its dense layers are {list(config.layers)})")
        shapes = param_shapes(config.parsed_arch())
        dtype = np.dtype(config.dtype)
    else:
        if layers[0] != N_X:
            raise ModelFileError(
                f"{label}: this model takes {layers[0]} inputs, but catdnn's images give {N_X} (64×64×3)"
            )
        if layers[-1] != 1:
            raise ModelFileError(f"{label}: this model has {layers[-1]} outputs; a cat/non-cat model has 1")
        shapes = [((layers[l], layers[l - 1]), (layers[l], 1)) for l in range(1, len(layers))]
        dtype = np.dtype(np.float64)
        config = None
    expected = {"meta"}
    params = []
    for l, (w_shape, b_shape) in enumerate(shapes, start=1):
        pair = []
        for key, shape in ((f"W{l}", w_shape), (f"b{l}", b_shape)):
            expected.add(key)
            if key not in arrays:
                raise ModelFileError(f"{label}: array {key} is missing")
            a = arrays[key]
            if a.dtype != dtype:
                raise ModelFileError(f"{label}: {key} has dtype {a.dtype}, expected {dtype}")
            if a.shape != shape:
                raise ModelFileError(f"{label}: {key} has shape {a.shape}, expected {shape}"
                                     + (f" for the architecture {arch_text!r}" if arch_text else ""))
            if not np.isfinite(a).all():
                raise ModelFileError(f"{label}: {key} contains NaN or infinite values")
            pair.append(a)
        params.append(tuple(pair))
    if config is None:
        config = _config(cfg, layers, label)
    _check_curves(meta, config, label)
    bn = _batch_norm(arrays, meta, config, layers, expected, label)
    extra = sorted(set(arrays) - expected)
    if extra:
        if any(k.rstrip("0123456789") in BN_ARRAYS for k in extra):
            raise ModelFileError(f"{label}: holds batch-norm arrays ({', '.join(extra)}) but its settings have "
                                 "batch_norm off: the file is inconsistent")
        raise ModelFileError(f"{label}: unexpected arrays {', '.join(extra)}")
    try:
        history = [(int(i), float(c)) for i, c in meta.get("history", [])]
        acc_hist = [(int(i), _opt(a), _opt(b)) for i, a, b in meta.get("accuracy_history", [])]
        classes = tuple(str(c) for c in meta.get("classes", ("non-cat", "cat")))
        return Model(
            params=params,
            config=config,
            classes=classes if len(classes) == 2 else ("non-cat", "cat"),
            history=history,
            accuracy_history=acc_hist,
            iterations_done=int(meta.get("iterations_done", 0)),
            train_accuracy=_opt(meta.get("train_accuracy")),
            test_accuracy=_opt(meta.get("test_accuracy")),
            status=str(meta.get("status", "finished")),
            train_seconds=float(meta.get("train_seconds", 0.0)),
            created=str(meta.get("created", "")),
            dataset=str(meta.get("dataset") or COURSE_NAME),  # files saved before it was recorded: the course's
            bn=bn,
        )
    except (TypeError, ValueError, OverflowError) as exc:
        raise ModelFileError(f"{label}: invalid metadata ({exc})") from None


def _check_curves(meta: dict, config: TrainConfig, label: str) -> None:
    """Refuse curves longer than a run records: a point per iteration (+ 1), at most MAX_HISTORY_POINTS."""
    limit = min(int(config.iterations) + 1, MAX_HISTORY_POINTS)
    for key, what in (("history", "cost"), ("accuracy_history", "accuracy")):
        points = meta.get(key, [])
        if not isinstance(points, list):
            raise ModelFileError(f"{label}: invalid metadata ({key} is not a list)")
        if len(points) > limit:
            raise ModelFileError(
                f"{label}: its {what} curve has {len(points):,} points, more than a run of "
                f"{config.iterations:,} iterations records (the limit is {limit:,}): the file is damaged or forged"
            )


def _batch_norm(arrays: dict, meta: dict, config: TrainConfig, layers: list, expected: set, label: str):
    """The file's :class:`BatchNorm` when its settings have ``batch_norm`` (else None), every array
    checked: present, the parameters' dtype, shape ``(n_l, 1)``, finite, variances not negative;
    ``expected`` gains their names."""
    if not config.batch_norm:
        return None
    arch = config.parsed_arch()
    sizes = list(arch.convs) + list(layers[1:-1])  # conv channels, then hidden units
    dtype = np.dtype(config.dtype)
    spec = meta.get("bn")
    if not isinstance(spec, dict):
        raise ModelFileError(f"{label}: its settings have batch norm on but it has no batch-norm description "
                             "('bn' in its metadata): the file is inconsistent")
    momentum, epsilon = spec.get("momentum"), spec.get("epsilon")
    for what, v, ok in (("momentum", momentum, lambda x: 0.0 <= x < 1.0),
                        ("epsilon", epsilon, lambda x: 0.0 < x < 1.0)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not ok(float(v)):
            raise ModelFileError(f"{label}: batch norm's {what} {v!r} is not a valid value")
    pairs, running = [], []
    for l, n in enumerate(sizes, start=1):
        got = []
        for name in BN_ARRAYS:
            key = f"{name}{l}"
            expected.add(key)
            if key not in arrays:
                raise ModelFileError(f"{label}: its settings have batch norm on but array {key} is missing "
                                     f"(batch norm keeps {', '.join(BN_ARRAYS)} for each hidden layer)")
            a = arrays[key]
            if a.dtype != dtype:
                raise ModelFileError(f"{label}: {key} has dtype {a.dtype}, expected {dtype}")
            if a.shape != (n, 1):
                raise ModelFileError(f"{label}: {key} has shape {a.shape}, expected {(n, 1)} (normalised layer {l} "
                                     f"has {n} {'channels' if l <= len(arch.convs) else 'units'})")
            if not np.isfinite(a).all():
                raise ModelFileError(f"{label}: {key} contains NaN or infinite values")
            got.append(a)
        if (got[3] < 0).any():
            raise ModelFileError(f"{label}: var{l}, a running variance, has negative entries")
        pairs.append((got[0], got[1]))
        running.append((got[2], got[3]))
    return BatchNorm(pairs, running, float(momentum), float(epsilon))


def _parse_meta(text: str, label: str):
    """The ``meta`` JSON document; a ModelFileError for what Python's json
    would raise: nesting too deep (RecursionError), an integer of thousands of digits (ValueError).
    ``NaN`` and ``Infinity`` parse; the checks after refuse them where they do not belong."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ModelFileError(f"{label}: not a catdnn model ('meta' is nested too deeply)") from None
    except ValueError as exc:  # JSONDecodeError, or the int digit limit
        why = (str(exc).split(":")[0] if isinstance(exc, json.JSONDecodeError)
               else "a number with thousands of digits" if "digits" in str(exc) else str(exc)[:120])
        raise ModelFileError(f"{label}: not a catdnn model ('meta' is not valid JSON: {why})") from None
