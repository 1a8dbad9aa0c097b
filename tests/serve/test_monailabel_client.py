"""``samia serve`` in its own process, driven by MONAI Label's own client
(``monailabel.client.MONAILabelClient``, which 3D Slicer's MONAILabel module wraps) with the real
LiteMedSAM on the bundled Colin27 volume, with the parameters that module sends: the session
upload, ``[i, j, k]`` clicks and the ROI box, ``.nrrd`` results. The label the client saves lies on
the uploaded volume's geometry and equals, voxel for voxel, what samia's volume engine gives for
the same prompts; a repeated request with one more click is a correction; two clients at once; the
auth flow with a key."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import SimpleITK as sitk
from monailabel.client import MONAILabelClient
from monailabel.client.client import MONAILabelClientException
from serve_process import Served, engine

from samia.data.samples import sample_dataset_path
from samia.models import build_model
from samia.types import Prompt
from samia.volume import KeySlice, VolumePrompt

pytestmark = pytest.mark.real_weights

KEY_SLICE, BOX = 12, (68, 60, 125, 117)  # the left cerebellum where it is largest (x0, y0, x1, y1)
ROI = [BOX[0], BOX[2], BOX[1], BOX[3], KEY_SLICE, KEY_SLICE]  # Slicer's [i0, i1, j0, j1, k0, k1]
KEY = "monai-label-key-" + "x" * 16


@pytest.fixture(scope="module")
def served():
    server = Served("--max-sessions", "3")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def image_path():
    return sample_dataset_path("colin27_aal_3d") / "imagesTr" / "colin27.nii.gz"


@pytest.fixture(scope="module")
def model():
    return build_model("litemedsam", backend="auto")  # what samia serve runs by default


def _params(**prompts) -> dict:
    """What the MONAILabel module sends for a deepgrow model (its ``onClickDeepgrow`` and ``infer``)."""
    return {
        "label": "cerebellum_L",
        "foreground": [],
        "background": [],
        **prompts,
        "result_extension": ".nrrd",
        "result_dtype": "uint8",
    }


def _label(path: str, reference: sitk.Image) -> np.ndarray:
    label = sitk.ReadImage(path)
    assert label.GetSize() == reference.GetSize()
    assert label.GetSpacing() == pytest.approx(reference.GetSpacing())
    assert label.GetOrigin() == pytest.approx(reference.GetOrigin())
    assert label.GetDirection() == pytest.approx(reference.GetDirection())
    return sitk.GetArrayFromImage(label).astype(bool)


def _box(x0, y0, x1, y1) -> Prompt:
    return Prompt(box=np.array([x0, y0, x1, y1], dtype=np.float64))


def test_the_roi_and_a_click_match_the_engine_on_the_uploaded_geometry(served, image_path, model, tmp_path) -> None:
    reference = sitk.ReadImage(str(image_path))
    image = sitk.GetArrayFromImage(reference).astype(np.float32)
    client = MONAILabelClient(served.url, tmpdir=str(tmp_path), client_id="slicer")
    info = client.info()
    assert [m["type"] for m in info["models"].values()] == ["deepgrow"]  # Slicer shows its click tools
    assert info["models"]["litemedsam"]["dimension"] == 3
    assert client.auth_enabled() is False
    session_id = client.create_session(str(image_path))["session_id"]
    try:
        assert client.get_session(session_id)["meta"]["shape"] == list(image.shape)

        first_file, params = client.infer("litemedsam", "colin27", _params(roi=ROI), session_id=session_id)
        first, _ = engine(model, image, 0, VolumePrompt(key_slices=(KeySlice(KEY_SLICE, _box(*BOX)),)))
        assert first.sum() > 5000 and params["finished"] is True
        assert np.array_equal(_label(first_file, reference), first)

        # the module sends every click again with the new one: a correction from the new click's slice
        below = KEY_SLICE - 4
        rows, cols = np.nonzero(first[below])
        click = [int(np.median(cols)), int(np.median(rows)), below]  # [i, j, k]
        second_file, _ = client.infer(
            "litemedsam", "colin27", _params(roi=ROI, foreground=[click]), session_id=session_id
        )
        points = Prompt(points=np.array([click[:2]], dtype=np.float64), labels=np.array([1]))
        keys = (KeySlice(below, points), KeySlice(KEY_SLICE, _box(*BOX), settled=True))
        second, _ = engine(model, image, 0, VolumePrompt(key_slices=keys, current=first))
        assert np.array_equal(_label(second_file, reference), second)
        assert not np.array_equal(second, first)

        # the click deleted: the object starts over from what is sent, the ROI alone
        third_file, _ = client.infer("litemedsam", "colin27", _params(roi=ROI), session_id=session_id)
        assert np.array_equal(_label(third_file, reference), first)
    finally:
        client.remove_session(session_id)
    with pytest.raises(MONAILabelClientException):
        client.get_session(session_id)  # the module then uploads the volume again


def test_two_clients_at_once(served, image_path, model, tmp_path) -> None:
    reference = sitk.ReadImage(str(image_path))
    expected, _ = engine(
        model,
        sitk.GetArrayFromImage(reference).astype(np.float32),
        0,
        VolumePrompt(key_slices=(KeySlice(KEY_SLICE, _box(*BOX)),)),
    )

    def one(name: str) -> np.ndarray:
        client = MONAILabelClient(served.url, tmpdir=str(tmp_path / name), client_id=name)
        (tmp_path / name).mkdir()
        session_id = client.create_session(str(image_path))["session_id"]
        try:
            path, _ = client.infer("litemedsam", "colin27", _params(roi=ROI), session_id=session_id)
            return _label(path, reference)
        finally:
            client.remove_session(session_id)

    with ThreadPoolExecutor(2) as pool:
        results = [pool.submit(one, name) for name in ("first", "second")]
        assert all(np.array_equal(result.result(), expected) for result in results)


def test_with_a_key_the_client_logs_in_with_it(image_path, tmp_path) -> None:
    server = Served("--key", KEY)
    try:
        client = MONAILabelClient(server.url, tmpdir=str(tmp_path))
        assert client.auth_enabled() is True
        with pytest.raises(MONAILabelClientException):
            client.info()  # no token yet
        with pytest.raises(MONAILabelClientException):
            client.auth_token("annotator", "not the key")
        client.update_auth(client.auth_token("annotator", KEY))
        assert client.auth_valid_token() is True
        assert "litemedsam" in client.info()["models"]
    finally:
        server.stop()
