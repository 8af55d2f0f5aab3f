"""Plain helpers for the robustness tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import io
import struct
import zlib


def encode(img, fmt: str, **kw) -> bytes:
    """A PIL image saved to bytes in ``fmt``."""
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def tiny_png(width: int, height: int, colour_type: int = 2, depth: int = 8, idat: bytes | None = None) -> bytes:
    """A syntactically valid PNG whose IHDR claims ``width``×``height`` over a few bytes of data."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64) if idat is None else idat
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def npy_bytes(array) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def npy_v3_claiming(shape: tuple, dtype: str = "<f8", data: bytes = b"\0" * 64) -> bytes:
    """A ``.npy`` file in format version 3.0 whose header claims ``shape`` over a few bytes of data."""
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode("utf8")
    header += b" " * (-(len(header) + 13) % 64) + b"\n"  # magic (8) + length (4) + header: a multiple of 64
    return b"\x93NUMPY\x03\x00" + struct.pack("<I", len(header)) + header + data


def hostile_model_files(arrays: dict) -> dict[str, bytes]:
    """Crafted ``.npz`` files (issue 19, A1) built from a valid model's ``arrays`` (name -> ndarray):
    each once gave a raw exception instead of a ModelFileError."""
    import zipfile

    meta = str(arrays["meta"])

    def npz(members: dict) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for k, v in arrays.items():
                if k != "meta" and k + ".npy" not in members:
                    z.writestr(k + ".npy", npy_bytes(v))
            for k, v in members.items():
                z.writestr(k, v)
        return buf.getvalue()

    import numpy as np

    def with_meta(text: str) -> bytes:
        return npz({"meta.npy": npy_bytes(np.array(text))})

    assert '"iterations_done": 10' in meta and '"iterations": 10,' in meta and '"history": [' in meta
    from catdnn.model_io import MAX_META_BYTES

    # attack finding 2: 10 million history points made a 677 KB file take 2.3 GB to load; here just
    # enough of them that 'meta' is over the limit (4 bytes a character), and one point too many
    flood = ",".join(["[0,0]"] * (MAX_META_BYTES // 4 // 6 + 1)) + ","
    return {
        "meta-over-limit.npz": with_meta(meta.replace('"history": [', '"history": [' + flood, 1)),
        "history-too-long.npz": with_meta(meta.replace('"history": [', '"history": [' + "[0, 0.5], " * 11, 1)),
        "meta-raw-bytes.npz": npz({"meta": meta.encode()}),  # np.load gives bytes: AttributeError
        "meta-nested.npz": with_meta("[" * 100_000),  # RecursionError in json
        "meta-5000-digits.npz": with_meta(meta.replace('"iterations_done": 10', '"iterations_done": ' + "7" * 5000)),
        "meta-infinity.npz": with_meta(meta.replace('"iterations_done": 10', '"iterations_done": Infinity')),
        "npy-version-3.npz": npz({"meta.npy": npy_bytes(arrays["meta"]),
                                  "W1.npy": npy_v3_claiming((50_000, 1_000))}),  # 400 MB over 64 bytes
    }


def jpeg_with_repeated_scan(progressive_jpeg: bytes, copies: int, before: bytes = b"") -> bytes:
    """A progressive JPEG whose last scan (SOS segment and its entropy-coded data) is repeated
    ``copies`` more times: a scan bomb (issue 19, A9), each copy another pass over the whole image.
    ``before`` goes before each copy (e.g. a TEM marker ``FF 01``, which libjpeg steps over)."""
    sos = progressive_jpeg.rindex(b"\xff\xda")
    eoi = progressive_jpeg.rindex(b"\xff\xd9")
    scan = progressive_jpeg[sos:eoi]
    return progressive_jpeg[:eoi] + (before + scan) * copies + progressive_jpeg[eoi:]
