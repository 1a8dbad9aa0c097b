"""samia reads what nninteractive-client packs and the client reads what samia packs, and a body
that is not a well-formed, capped NNIA array is refused before anything is allocated."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from nnInteractive.inference.remote.serialization import pack_array as client_pack
from nnInteractive.inference.remote.serialization import unpack_array as client_unpack

from samia.serve.arrays import ArrayFormatError, pack_array, unpack_array

CASES = [
    np.random.default_rng(0).normal(size=(1, 7, 9, 5)).astype(np.float32),
    (np.random.default_rng(1).random((6, 11, 13)) > 0.7).astype(np.uint8),
    np.arange(-60, 60, dtype=np.int16).reshape(4, 5, 6),
    np.zeros((3, 4, 5), dtype=np.uint8),
    np.array([True, False, True]),
]


@pytest.mark.parametrize("array", CASES, ids=lambda a: f"{a.dtype}{list(a.shape)}")
def test_arrays_round_trip_through_the_real_client(array: np.ndarray) -> None:
    from_client = unpack_array(client_pack(array), max_elements=array.size)
    assert from_client.dtype == array.dtype and np.array_equal(from_client, array)
    to_client = client_unpack(pack_array(array))
    assert to_client.dtype == array.dtype and np.array_equal(to_client, array)


def test_a_big_endian_array_arrives_in_little_endian_order() -> None:
    array = np.arange(24, dtype=">i4").reshape(2, 3, 4)
    assert np.array_equal(client_unpack(pack_array(array)), array)


def _header(shape: tuple[int, ...], name: bytes = b"uint8") -> bytes:
    return struct.pack(f"<4sBBBB{len(name)}s", b"NNIA", 1, 1, len(shape), len(name), name) + struct.pack(
        f"<{len(shape)}q", *shape
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"NNI", "at least 8"),
        (b"PNG\x00" + bytes(20), "not an NNIA version 1"),
        (_header((2, 2), b"object") + struct.pack("<I", 0), "element type 'object'"),
        (_header((4096, 4096, 4096)) + struct.pack("<I", 0), "at most 1000"),
        (_header((10,)) + struct.pack("<I", 0), "need"),
        (_header((10,)) + struct.pack("<I", 1) + struct.pack("<QQ", 10, 50) + bytes(5), "does not fit"),
        (_header((10,)) + struct.pack("<I", 1) + struct.pack("<QQ", 10, 5) + bytes(5), "blosc2"),
    ],
    ids=["short", "magic", "dtype", "too-many-elements", "missing-chunks", "truncated-chunk", "not-a-frame"],
)
def test_malformed_or_oversized_bodies_are_refused_in_one_line(body: bytes, message: str) -> None:
    with pytest.raises(ArrayFormatError, match=message) as refused:
        unpack_array(body, max_elements=1000)
    assert "\n" not in str(refused.value)


def test_a_chunk_whose_frame_disagrees_with_its_header_is_refused() -> None:
    packed = bytearray(pack_array(np.ones((4, 4), dtype=np.uint8)))
    offset = len(_header((4, 4))) + 4
    packed[offset : offset + 8] = struct.pack("<Q", 8)  # the header claims 8 raw bytes, the frame holds 16
    with pytest.raises(ArrayFormatError, match="frame holds 16 bytes"):
        unpack_array(bytes(packed), max_elements=100)
