"""NumPy ``.npy`` bodies (optionally gzipped), read with limits: the older nnInteractive Slicer API
sends images and masks this way.

The header is read first (magic, version, dtype, shape); an object dtype, a shape past
``max_elements`` or a body whose data does not match its header is refused before the data is
read. A gzipped body is inflated at most to the size its header allows (a small gzip cannot expand
into gigabytes), and pickles are never loaded.
"""

from __future__ import annotations

import io
import zlib

import numpy as np

from samia.serve.arrays import DTYPES, ArrayFormatError

HEADER_BYTES = 65536
"""The most a ``.npy`` header may take (NumPy's own limit is far smaller in practice)."""


def read_npy(body: bytes, max_elements: int, gzipped: bool) -> np.ndarray:
    """The array of a ``.npy`` ``body`` (gzipped when ``gzipped``).

    Raises:
        ArrayFormatError: not a ``.npy`` (or not gzip), a refused dtype, too many elements, or
            data that does not fill the declared shape.
    """
    if gzipped:
        inflater = zlib.decompressobj(wbits=31)
        try:
            head = inflater.decompress(body, HEADER_BYTES)
        except zlib.error as error:
            raise ArrayFormatError(f"not gzip data ({error})") from None
        shape, dtype, offset = _header(head, max_elements)
        needed = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        room = needed - len(head) + 1  # one byte more than fits: a longer body is refused below
        try:  # (a max_length of 0 would mean no limit)
            rest = inflater.decompress(inflater.unconsumed_tail, room) if room > 0 else b""
        except zlib.error as error:
            raise ArrayFormatError(f"not gzip data ({error})") from None
        raw = head + rest
    else:
        raw = body
        shape, dtype, offset = _header(raw, max_elements)
    data = raw[offset:]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise ArrayFormatError(f"the .npy data holds {len(data)} bytes; shape {shape} {dtype.name} needs {expected}")
    return np.load(io.BytesIO(raw), allow_pickle=False)


def _header(raw: bytes, max_elements: int) -> tuple[tuple[int, ...], np.dtype, int]:
    """``(shape, dtype, data offset)`` of a ``.npy`` header, checked."""
    stream = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(stream)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = reader(stream)
    except (ValueError, EOFError) as error:
        raise ArrayFormatError(f"not a .npy array ({error})") from None
    if dtype.name not in DTYPES or fortran:
        raise ArrayFormatError(f".npy of {dtype} ({'Fortran order' if fortran else 'element type'} not accepted)")
    elements = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if elements > max_elements:
        raise ArrayFormatError(f"shape {shape} holds {elements} elements; at most {max_elements} (SAMIA_MAX_PIXELS)")
    return tuple(int(s) for s in shape), dtype, stream.tell()
