"""``samia serve`` in its own process, driven by nnInteractive's own client
(``nninteractive-client``'s ``nnInteractiveRemoteInferenceSession``, as napari-nninteractive and
MITK use it, and 3D Slicer's nnInteractive module in remote mode) with the real LiteMedSAM on the
bundled Colin27 volume: the mask the client's buffer holds equals, voxel for voxel, what samia's
volume engine gives for the same prompts, for napari's and Slicer's (z, y, x) arrays (Slicer's
boxes built as its plugin builds them) at once and for an (x, y, z) array; corrections decode less than a
fresh propagation; undo, reset, leases and capacity behave as the client expects."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from nnInteractive.inference.remote import (
    ServerAtCapacityError,
    SessionExpiredError,
    nnInteractiveRemoteInferenceSession,
)
from serve_process import Served, engine

from samia.data.samples import sample_dataset_path
from samia.io.volume import read_volume
from samia.models import build_model
from samia.types import Prompt, Volume
from samia.volume import KeySlice, VolumePrompt

pytestmark = pytest.mark.real_weights

KEY_SLICE, BOX = 12, (68, 60, 125, 117)  # the left cerebellum where it is largest (x0, y0, x1, y1)


@pytest.fixture(scope="module")
def served():
    server = Served("--max-sessions", "2")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def colin27() -> Volume:
    volume = read_volume(sample_dataset_path("colin27_aal_3d") / "imagesTr" / "colin27.nii.gz")
    assert isinstance(volume, Volume)
    return volume


@pytest.fixture(scope="module")
def model():
    return build_model("litemedsam", backend="auto")  # what samia serve runs by default


def _box_prompt(x0: float, y0: float, x1: float, y1: float) -> Prompt:
    return Prompt(box=np.array([x0, y0, x1, y1], dtype=np.float64))


def _client(served: Served, image: np.ndarray, spacing: tuple[float, ...]) -> tuple[object, np.ndarray]:
    # a loaded CI machine may answer a propagation after the client's default 60 s: not what is tested here
    session = nnInteractiveRemoteInferenceSession(served.url, read_timeout=600)
    session.set_image(image[None].astype(np.float32), {"spacing": list(spacing)})
    target = np.zeros(image.shape, dtype=np.uint8)
    session.set_target_buffer(target)
    return session, target


def test_napari_layout_box_correction_undo_and_reset_match_theengine(served, colin27, model) -> None:
    image = colin27.array.astype(np.float32)  # (z, y, x), as napari holds it
    x0, y0, x1, y1 = BOX
    first, _ = engine(model, image, 0, VolumePrompt(key_slices=(KeySlice(KEY_SLICE, _box_prompt(*BOX)),)))
    assert first.sum() > 5000
    session, target = _client(served, image, colin27.spacing)
    try:
        session.add_bbox_interaction([[KEY_SLICE, KEY_SLICE + 1], [y0, y1 + 1], [x0, x1 + 1]], include_interaction=True)
        assert np.array_equal(target.astype(bool), first)

        # a correction on another slice: the first key's chains are settled, the new key's stop where they converge
        below = KEY_SLICE - 4
        rows, cols = np.flatnonzero(first[below].any(axis=1)), np.flatnonzero(first[below].any(axis=0))
        box = (cols[0] - 3, rows[0] - 3, cols[-1] + 3, rows[-1] + 3)
        keys = (KeySlice(below, _box_prompt(*box)), KeySlice(KEY_SLICE, _box_prompt(*BOX), settled=True))
        second, _ = engine(model, image, 0, VolumePrompt(key_slices=keys, current=first))
        _, fresh_decoded = engine(model, image, 0, VolumePrompt(key_slices=tuple(replace_settled(k) for k in keys)))
        session.add_bbox_interaction(
            [[below, below + 1], [box[1], box[3] + 1], [box[0], box[2] + 1]], include_interaction=True
        )
        assert np.array_equal(target.astype(bool), second)
        assert served.decoded("bbox", at_least=2)[-1] < fresh_decoded  # this module's second box

        assert session.undo() is True
        assert np.array_equal(target.astype(bool), first)
        session.reset_interactions()
        assert not target.any()
        assert session.undo() is False  # nothing left to undo after a reset
    finally:
        session.close()


def replace_settled(key: KeySlice) -> KeySlice:
    return KeySlice(key.index, key.prompt, key.mask)


def slicer_bbox(outer_point_one: list[int], outer_point_two: list[int]) -> list[list[int]]:
    """SlicerNNInteractive's ``bbox_prompt``, transcribed: the two corners in IJK (i, j, k) are
    reversed to the (k, j, i) order of ``arrayFromVolume`` and made half-open intervals."""
    first, second = outer_point_one[::-1], outer_point_two[::-1]
    return [[int(min(a, b)), int(max(a, b)) + 1] for a, b in zip(first, second)]


def test_two_clients_at_once_napari_and_slicer(served, colin27, model) -> None:
    image = colin27.array.astype(
        np.float32
    )  # napari's (z, y, x); Slicer's arrayFromVolume is (k, j, i), the same order
    x0, y0, x1, y1 = BOX
    expected, _ = engine(model, image, 0, VolumePrompt(key_slices=(KeySlice(KEY_SLICE, _box_prompt(*BOX)),)))

    def napari_client() -> np.ndarray:
        session, target = _client(served, image, colin27.spacing)
        try:
            session.add_bbox_interaction([[KEY_SLICE, KEY_SLICE + 1], [y0, y1 + 1], [x0, x1 + 1]], True)
            return target.copy()
        finally:
            session.close()

    def slicer_client() -> np.ndarray:
        # the plugin sends image[None] with the spacing reversed from IJK, and boxes from two IJK corners
        spacing_ijk = colin27.spacing[::-1]
        session, target = _client(served, image, tuple(reversed(spacing_ijk)))
        try:
            session.add_bbox_interaction(slicer_bbox([x0, y0, KEY_SLICE], [x1, y1, KEY_SLICE]), True)
            return target.copy()
        finally:
            session.close()

    with ThreadPoolExecutor(2) as pool:
        from_napari, from_slicer = pool.submit(napari_client), pool.submit(slicer_client)
        assert np.array_equal(from_napari.result().astype(bool), expected)
        assert np.array_equal(from_slicer.result().astype(bool), expected)


def test_an_x_y_z_array_is_sliced_along_the_axis_drawn_on(served, colin27, model) -> None:
    xyz = np.ascontiguousarray(
        colin27.array.astype(np.float32).transpose(2, 1, 0)
    )  # ITK's (x, y, z) order, as MITK may hold it
    x0, y0, x1, y1 = BOX
    # the planes along z of an (x, y, z) array are (x, y) arrays: a plane's column is the image's y
    expected, _ = engine(model, xyz, 2, VolumePrompt(key_slices=(KeySlice(KEY_SLICE, _box_prompt(y0, x0, y1, x1)),)))
    session, target = _client(served, xyz, colin27.spacing[::-1])
    try:
        session.add_bbox_interaction([[x0, x1 + 1], [y0, y1 + 1], [KEY_SLICE, KEY_SLICE + 1]], True)
        assert np.array_equal(target.astype(bool), expected)
    finally:
        session.close()


def test_leases_capacity_and_release_as_the_client_expects(served) -> None:
    first = nnInteractiveRemoteInferenceSession(served.url)
    second = nnInteractiveRemoteInferenceSession(served.url)
    try:
        assert first.liveness_timeout_seconds > 0 and first.lease_status()["remaining_seconds"] > 0
        assert first.supports_undo and first.supported_interactions["bbox2d"]
        with pytest.raises(ServerAtCapacityError):
            nnInteractiveRemoteInferenceSession(served.url)
        second._http.post("/release")  # released behind the client's back: its token is gone
        with pytest.raises(SessionExpiredError):
            second.heartbeat()
        third = nnInteractiveRemoteInferenceSession(served.url)  # the released place is free again
        third.close()
    finally:
        first.close()
        second.close()
