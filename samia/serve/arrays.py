"""nnInteractive's binary array format ("NNIA", wire version 1), read with limits and written.

Layout (little-endian): ``b"NNIA"``, version ``u8`` (1), codec ``u8`` (1 = ZSTD, 2 = LZ4), ``ndim
u8``, dtype-name length ``u8``, the dtype name in ASCII (``"uint8"``, ``"float32"``), ``ndim``
``i64`` sizes, then ``nchunks u32`` and per chunk its raw and compressed byte counts (``u64``
each) and a blosc2 frame. The client (``nninteractive-client``) sends images, scribbles, lassos
and initial segmentations this way and reads replies the same way.

Reading checks everything before any buffer is allocated: the header, a dtype samia accepts, the
declared element count against ``max_elements``, every chunk's raw size against the frame's own
header and against what the shape leaves, so a hostile or broken body costs no more memory than
its declared (capped) array.
"""

from __future__ import annotations

import struct

import numpy as np

from samia.errors import SamiaError

MAGIC = b"NNIA"
VERSION = 1
ZSTD, LZ4 = 1, 2
CHUNK_BYTES = 1 << 30
"""Raw bytes per compressed chunk (blosc2 takes at most 2 GiB per call)."""

DTYPES = frozenset(
    {"bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float16", "float32", "float64"}
)
"""Element types a body may declare (no objects, strings or structured types)."""


class ArrayFormatError(SamiaError):
    """A request body is not a readable NNIA array (the message says what is wrong)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"array body: {message}")


def pack_array(array: np.ndarray) -> bytes:
    """``array`` as NNIA bytes (ZSTD, level 3, no shuffle: masks compress best so)."""
    import blosc2

    array = np.ascontiguousarray(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    name = array.dtype.name.encode("ascii")
    raw = array.reshape(-1).view(np.uint8)  # the bytes, without a copy
    starts = range(0, raw.nbytes, CHUNK_BYTES)
    parts = [
        struct.pack(f"<4sBBBB{len(name)}s", MAGIC, VERSION, ZSTD, array.ndim, len(name), name),
        struct.pack(f"<{array.ndim}q", *array.shape),
        struct.pack("<I", len(starts)),
    ]
    for start in starts:
        piece = raw[start : start + CHUNK_BYTES]
        frame = blosc2.compress2(
            piece, typesize=array.dtype.itemsize, codec=blosc2.Codec.ZSTD, clevel=3, filters=[blosc2.Filter.NOFILTER]
        )
        parts += [struct.pack("<QQ", piece.nbytes, len(frame)), frame]
    return b"".join(parts)


def unpack_array(body: bytes, max_elements: int) -> np.ndarray:
    """The array in ``body``.

    Raises:
        ArrayFormatError: a body that is not NNIA version 1, an unknown codec or dtype, more than
            ``max_elements`` elements, or chunks that do not add up to the declared shape.
    """
    import blosc2

    if len(body) < 8:
        raise ArrayFormatError(f"{len(body)} bytes; an NNIA header is at least 8")
    magic, version, codec, ndim, name_length = struct.unpack_from("<4sBBBB", body, 0)
    if magic != MAGIC or version != VERSION:
        raise ArrayFormatError(f"not an NNIA version {VERSION} array (starts {bytes(body[:5])!r})")
    if codec not in (ZSTD, LZ4):
        raise ArrayFormatError(f"unknown codec {codec}")
    offset = 8 + name_length
    name = bytes(body[8:offset]).decode("ascii", errors="replace")
    if name not in DTYPES:
        raise ArrayFormatError(f"element type {name!r} is not accepted (one of {', '.join(sorted(DTYPES))})")
    if ndim > 8 or len(body) < offset + 8 * ndim + 4:
        raise ArrayFormatError(f"a header of {ndim} dimensions does not fit in {len(body)} bytes")
    shape = struct.unpack_from(f"<{ndim}q", body, offset)
    offset += 8 * ndim
    if any(size < 0 for size in shape):
        raise ArrayFormatError(f"negative size in shape {shape}")
    elements = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if elements > max_elements:
        raise ArrayFormatError(f"shape {shape} holds {elements} elements; at most {max_elements} (SAMIA_MAX_PIXELS)")
    dtype = np.dtype(name)
    out = np.empty(elements, dtype=dtype)
    total, written = elements * dtype.itemsize, 0
    (chunks,) = struct.unpack_from("<I", body, offset)
    offset += 4
    view = memoryview(body)
    for _ in range(chunks):
        if len(body) < offset + 16:
            raise ArrayFormatError("truncated chunk header")
        raw_bytes, frame_bytes = struct.unpack_from("<QQ", body, offset)
        offset += 16
        frame = view[offset : offset + frame_bytes]
        if len(frame) != frame_bytes or written + raw_bytes > total or raw_bytes % dtype.itemsize:
            raise ArrayFormatError(f"a chunk of {raw_bytes} bytes does not fit the declared {shape} {name}")
        try:
            declared = blosc2.get_cbuffer_sizes(frame)[0]
        except (RuntimeError, ValueError) as error:
            raise ArrayFormatError(f"a chunk is not a blosc2 frame ({error})") from None
        if declared != raw_bytes:
            raise ArrayFormatError(f"a chunk's frame holds {declared} bytes, its header says {raw_bytes}")
        start = written // dtype.itemsize
        blosc2.decompress2(frame, dst=out[start : start + raw_bytes // dtype.itemsize])
        written += raw_bytes
        offset += frame_bytes
    if written != total:
        raise ArrayFormatError(f"the chunks hold {written} bytes; shape {shape} {name} needs {total}")
    return out.reshape(shape)
