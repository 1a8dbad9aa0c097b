"""``.npy`` bodies (the older Slicer API's) are read only when their header is acceptable: no
pickles, no object arrays, no gzip that inflates past what the header allows."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pytest

from samia.serve.arrays import ArrayFormatError
from samia.serve.npy import read_npy


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def test_plain_and_gzipped_arrays_read_back() -> None:
    array = np.arange(60, dtype=np.int16).reshape(3, 4, 5)
    assert np.array_equal(read_npy(_npy(array), 100, gzipped=False), array)
    assert np.array_equal(read_npy(gzip.compress(_npy(array)), 100, gzipped=True), array)


@pytest.mark.parametrize(
    ("body", "gzipped", "message"),
    [
        (_npy(np.array([{"a": 1}], dtype=object)), False, "not accepted"),
        (_npy(np.zeros((20, 20), dtype=np.uint8)), False, "at most 100"),
        (_npy(np.zeros((5, 5), dtype=np.uint8))[:-3], False, "needs 25"),
        (b"PK\x03\x04 not npy", False, "not a .npy"),
        (b"not gzip", True, "not gzip"),
        (gzip.compress(_npy(np.zeros(10, np.uint8)) + bytes(10**7)), True, "needs 10"),  # inflates past its header
        (_npy(np.asfortranarray(np.zeros((3, 4)))), False, "Fortran"),
    ],
    ids=["object", "too-many", "truncated", "not-npy", "not-gzip", "gzip-bomb", "fortran"],
)
def test_unacceptable_bodies_are_refused_in_one_line(body: bytes, gzipped: bool, message: str) -> None:
    with pytest.raises(ArrayFormatError, match=message):
        read_npy(body, 100, gzipped=gzipped)
