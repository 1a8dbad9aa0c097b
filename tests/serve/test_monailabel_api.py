"""MONAI Label's REST API of ``samia serve``, in-process with a tiny random-weight model: what the
clicks and ROI of a request become, uploads read with their geometry and written back with it, the
auth flow, and one-line refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
from fastapi.testclient import TestClient
from requests_toolbelt.multipart.decoder import MultipartDecoder

from samia.errors import SamiaError
from samia.models import build_model
from samia.predictor import SamiaPredictor
from samia.serve.app import create_app
from samia.serve.monailabel import Prompts
from samia.serve.sessions import ViewerSessions
from samia.serve.viewer import ViewerSession

KEY = "m" * 24


@pytest.fixture(scope="module")
def model():
    return build_model("tiny_sam", backend="torch")


@pytest.fixture
def sessions(model):
    sessions = ViewerSessions(model, max_sessions=2, memory_bytes=2**24)
    yield sessions
    sessions.close()


def _volume_file(tmp_path, shape=(8, 32, 40)):
    """A NIfTI volume with non-trivial geometry (spacing, origin, an oblique direction)."""
    array = np.zeros(shape, dtype=np.int16)
    array[shape[0] // 4 : max(1, 3 * shape[0] // 4), 8:24, 10:30] = 300
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.8, 0.9, 2.5))
    image.SetOrigin((-10.0, 20.0, 5.5))
    angle = np.deg2rad(10)
    image.SetDirection((np.cos(angle), -np.sin(angle), 0.0, np.sin(angle), np.cos(angle), 0.0, 0.0, 0.0, 1.0))
    path = tmp_path / "scan.nii.gz"
    sitk.WriteImage(image, str(path))
    return path, image


def _session(client: TestClient, path) -> str:
    with open(path, "rb") as file:
        response = client.put("/session/", files=[("files", (path.name, file.read()))])
    assert response.status_code == 200, response.text
    return response.json()["session_id"]


def _infer(client: TestClient, session_id: str, params: dict, model: str = "tiny_sam"):
    return client.post(
        f"/infer/{model}", params={"image": "scan", "session_id": session_id}, data={"params": json.dumps(params)}
    )


def _parts(response) -> tuple[dict, bytes, str]:
    """The reply's JSON params, label file bytes and file name, as a multipart reader finds them."""
    decoded = MultipartDecoder(response.content, response.headers["content-type"])
    params, label, name = None, None, None
    for part in decoded.parts:
        disposition = part.headers[b"Content-Disposition"].decode()
        if "filename=" in disposition:
            label, name = part.content, disposition.split('filename="')[1].rstrip('"')
        else:
            params = json.loads(part.text)
    return params, label, name


def test_clicks_and_roi_come_in_ijk_and_become_zyx_voxels() -> None:
    prompts = Prompts.from_params(
        {"label": "liver", "foreground": [[30, 20, 5]], "background": [[1, 2, 3]], "roi": [40, 10, 5, 25, 4, 4]}
    )
    assert prompts.foreground == ((5, 20, 30),) and prompts.background == ((3, 2, 1),)
    assert prompts.region == ((4, 5), (5, 26), (10, 41))  # corners sorted, inclusive -> half-open
    for bad in ({"foreground": [[1, 2]]}, {"background": "x"}, {"roi": [1, 2, 3]}, {"foreground": [[1.5, 2, 3]]}):
        with pytest.raises(SamiaError):
            Prompts.from_params(bad)


def test_a_request_that_repeats_the_previous_prompts_adds_only_its_new_clicks() -> None:
    first = Prompts.from_params({"label": "a", "foreground": [[1, 2, 3]], "roi": [0, 9, 0, 9, 3, 3]})
    more = Prompts.from_params({"label": "a", "foreground": [[1, 2, 3], [4, 5, 6]], "roi": [0, 9, 0, 9, 3, 3]})
    added = more.added_to(first)
    assert added is not None and added.foreground == ((6, 5, 4),) and added.region is None
    assert more.added_to(None) is None
    moved = Prompts.from_params({"label": "a", "foreground": [[1, 2, 4]], "roi": [0, 9, 0, 9, 3, 3]})
    assert moved.added_to(first) is None  # a moved click starts over
    other = Prompts.from_params({"label": "b", "foreground": [[1, 2, 3]], "roi": [0, 9, 0, 9, 3, 3]})
    assert other.added_to(first) is None
    reset = Prompts.from_params(
        {"label": "a", "foreground": [[1, 2, 3]], "roi": [0, 9, 0, 9, 3, 3], "reset_state": True}
    )
    assert reset.added_to(first) is None  # the module's reset: start over


def test_info_names_one_3d_deepgrow_model_and_an_empty_datastore(sessions) -> None:
    client = TestClient(create_app(sessions, None, 2**24))
    info = client.get("/info/").json()
    assert info["models"] == {
        "tiny_sam": {
            "type": "deepgrow",
            "labels": [],
            "dimension": 3,
            "description": info["models"]["tiny_sam"]["description"],
            "config": {},
        }
    }
    assert client.get("/datastore/", params={"output": "all"}).json()["objects"] == {}
    assert client.get("/auth/").json()["enabled"] is False
    assert client.put("/datastore/", files={"file": ("a.nii.gz", b"x")}).status_code == 501


def test_the_label_comes_back_on_the_uploaded_geometry_equal_to_the_viewer_session(sessions, model, tmp_path) -> None:
    path, image = _volume_file(tmp_path)
    client = TestClient(create_app(sessions, None, 2**24))
    session_id = _session(client, path)
    assert client.get(f"/session/{session_id}").json()["meta"]["shape"] == [8, 32, 40]
    params = {"label": "lesion", "foreground": [[20, 16, 4]], "background": [], "roi": [10, 29, 8, 23, 2, 5]}
    response = _infer(client, session_id, {**params, "result_extension": ".nrrd"})
    assert response.status_code == 200, response.text
    result, label, name = _parts(response)
    assert name.endswith(".nrrd") and "/" not in name
    assert result["label_names"] == {"lesion": 1} and result["finished"] is True
    written = tmp_path / name
    written.write_bytes(label)
    back = sitk.ReadImage(str(written))
    assert back.GetSpacing() == pytest.approx(image.GetSpacing())
    assert back.GetOrigin() == pytest.approx(image.GetOrigin())
    assert back.GetDirection() == pytest.approx(image.GetDirection())
    # what samia's Python session gives for the same prompts, sent together
    viewer = ViewerSession(SamiaPredictor(model), sitk.GetArrayFromImage(image).astype(np.float32), (2.5, 0.9, 0.8))
    viewer.add_prompts(points=[((4, 16, 20), True)], region=[[2, 6], [8, 24], [10, 30]])
    assert np.array_equal(sitk.GetArrayFromImage(back).astype(bool), viewer.mask)
    assert client.delete(f"/session/{session_id}").status_code == 200
    assert client.get(f"/session/{session_id}").status_code == 404


def test_a_one_slice_upload_keeps_where_the_slice_lies(sessions, tmp_path) -> None:
    path, image = _volume_file(tmp_path, shape=(1, 32, 40))
    client = TestClient(create_app(sessions, None, 2**24))
    session_id = _session(client, path)
    response = _infer(client, session_id, {"label": "x", "roi": [10, 29, 8, 23, 0, 0], "result_extension": ".nii.gz"})
    _, label, name = _parts(response)
    (tmp_path / name).write_bytes(label)
    back = sitk.ReadImage(str(tmp_path / name))
    assert back.GetSize() == (40, 32, 1)
    assert back.GetOrigin() == pytest.approx(image.GetOrigin())
    assert back.GetDirection() == pytest.approx(image.GetDirection())


def test_a_failed_request_leaves_no_record_so_the_next_starts_over(sessions, tmp_path) -> None:
    client = TestClient(create_app(sessions, None, 2**24))
    session_id = _session(client, _volume_file(tmp_path)[0])
    assert _infer(client, session_id, {"label": "a", "roi": [10, 29, 8, 23, 2, 5]}).status_code == 200
    outside = [500, 600, 500, 600, 2, 2]  # an ROI beyond the image: the object is reset, then refused
    assert _infer(client, session_id, {"label": "a", "roi": outside, "reset_state": True}).status_code == 400
    # the same ROI and one more click is not a correction of a request that never ran: refused again
    more = _infer(client, session_id, {"label": "a", "roi": outside, "foreground": [[20, 16, 4]]})
    assert more.status_code == 400 and "empty inside the image" in more.json()["detail"]


@pytest.mark.parametrize(
    ("request_", "status", "message"),
    [
        (lambda c, s: _infer(c, s, {"foreground": [[1, 2]]}), 400, "foreground is a list of"),
        (lambda c, s: _infer(c, s, {"foreground": [[1, 2, 999]]}), 400, "outside the image"),
        (lambda c, s: _infer(c, s, {"result_extension": ".exe"}), 400, "result_extension"),
        (lambda c, s: _infer(c, s, {}, model="other"), 404, "this server runs 'tiny_sam'"),
        (lambda c, s: _infer(c, "", {}), 404, "keeps no datastore"),
        (lambda c, s: _infer(c, "gone", {}), 404, "not found"),
        (lambda c, s: c.put("/session/", files=[("files", ("../../etc/x.exe", b"MZ"))]), 400, "x.exe"),
        (lambda c, s: c.put("/session/", files=[("files", ("broken.nii.gz", b"not a volume"))]), 400, "broken"),
    ],
    ids=[
        "short-click",
        "click-outside",
        "result-format",
        "unknown-model",
        "no-session",
        "ended-session",
        "bad-ending",
        "garbage",
    ],
)
def test_bad_requests_are_refused_in_one_line(sessions, tmp_path, request_, status: int, message: str) -> None:
    client = TestClient(create_app(sessions, None, 2**24))
    session_id = _session(client, _volume_file(tmp_path)[0])
    response = request_(client, session_id)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert message in detail and "\n" not in detail and "samia-serve" not in detail  # no server folder told


def test_with_a_key_auth_is_on_and_the_token_is_the_key(sessions) -> None:
    client = TestClient(create_app(sessions, KEY, 2**24))
    assert client.get("/auth/").json()["enabled"] is True
    assert client.get("/info/").status_code == 401
    assert client.post("/auth/token", data={"username": "me", "password": "wrong"}).status_code == 401
    token = client.post("/auth/token", data={"username": "me", "password": KEY}).json()
    headers = {"Authorization": f"{token['token_type']} {token['access_token']}"}
    assert client.get("/auth/token/valid", headers=headers).status_code == 200
    assert client.get("/info/", headers=headers).status_code == 200
