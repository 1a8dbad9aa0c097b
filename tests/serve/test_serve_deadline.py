"""No reply waits for a whole propagation: past the reply deadline an interaction answers its key
slice, and nnInteractive's ``/predict`` (or MONAI Label's repeated request) finishes it, until the
client holds exactly what an undisturbed propagation gives. In-process, tiny random-weight model;
the deadline is 0 s, so nothing depends on the machine's speed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from fastapi.testclient import TestClient

from samia.models import build_model
from samia.predictor import SamiaPredictor
from samia.serve.app import create_app
from samia.serve.arrays import pack_array, unpack_array
from samia.serve.sessions import ViewerSessions
from samia.serve.viewer import ViewerSession


@pytest.fixture(scope="module")
def model():
    return build_model("tiny_sam", backend="torch")


def _image() -> np.ndarray:
    image = np.zeros((10, 32, 32), dtype=np.float32)
    image[2:8, 8:24, 8:24] = 100
    return image


def test_nninteractive_predict_finishes_what_the_deadline_cut(model) -> None:
    image = _image()
    undisturbed = ViewerSession(SamiaPredictor(model), image, spacing=None, reply_seconds=600)
    undisturbed.add_box([[5, 6], [8, 24], [8, 24]], positive=True)
    assert np.delete(undisturbed.mask, 5, axis=0).any(), "the test needs an object that propagates"

    sessions = ViewerSessions(model, reply_seconds=0.0)
    try:
        client = TestClient(create_app(sessions, None, 2**24))
        lease = {"X-Lease-Token": client.post("/claim").json()["lease_token"]}
        assert client.post("/set_image", content=pack_array(image[None]), headers=lease).status_code == 200
        client.post("/set_target_buffer", json={"shape": list(image.shape), "dtype": "uint8"}, headers=lease)
        target = np.zeros(image.shape, dtype=np.uint8)

        def patch(response) -> None:
            meta = json.loads(response.headers["X-Meta"])
            if meta["bbox"] is not None:
                target[tuple(slice(low, high) for low, high in meta["bbox"])] = unpack_array(
                    response.content, max_elements=image.size
                )

        box = {"bbox_coords": [[5, 6], [8, 24], [8, 24]], "include_interaction": True}
        patch(client.post("/add_bbox_interaction", json=box, headers=lease))
        assert np.array_equal(target[5].astype(bool), undisturbed.mask[5])
        assert not np.delete(target, 5, axis=0).any()  # only the key slice before the deadline

        sessions.peek(lease["X-Lease-Token"]).require_viewer().reply_seconds = 600.0  # the next run has time
        patch(client.post("/predict", headers=lease))
        assert np.array_equal(target.astype(bool), undisturbed.mask)
        finished = client.post("/predict", headers=lease)
        assert json.loads(finished.headers["X-Meta"])["ran_prediction"] is False  # nothing left
    finally:
        sessions.close()


def test_monailabel_repeating_a_request_finishes_what_the_deadline_cut(model, tmp_path) -> None:
    image = _image()
    path = tmp_path / "scan.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(image), str(path))
    undisturbed = ViewerSession(SamiaPredictor(model), image, spacing=(1.0, 1.0, 1.0), reply_seconds=600)
    undisturbed.add_prompts(region=[[5, 6], [8, 24], [8, 24]])

    sessions = ViewerSessions(model, reply_seconds=0.0)
    try:
        client = TestClient(create_app(sessions, None, 2**24))
        session_id = client.put("/session/", files=[("files", ("scan.nii.gz", path.read_bytes()))]).json()["session_id"]
        request = {"params": json.dumps({"label": "x", "roi": [8, 23, 8, 23, 5, 5]})}
        url = f"/infer/tiny_sam?session_id={session_id}&output=json"
        assert client.post(url, data=request).json()["finished"] is False
        sessions.peek(session_id).require_viewer().reply_seconds = 600.0
        assert client.post(url, data=request).json()["finished"] is True
        assert np.array_equal(sessions.peek(session_id).require_viewer().mask, undisturbed.mask)
    finally:
        sessions.close()
