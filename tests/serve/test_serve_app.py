"""The guard and the sessions of ``samia serve``'s app, in-process with a tiny random-weight model:
the key, body caps, leases (liveness and idle), capacity, the memory budget, one log line per
interaction."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from fastapi.testclient import TestClient

from samia.models import build_model
from samia.serve.app import create_app
from samia.serve.arrays import pack_array, unpack_array
from samia.serve.sessions import ViewerSessions

KEY = "k" * 24


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def model():
    return build_model("tiny_sam", backend="torch")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sessions(model, clock):
    sessions = ViewerSessions(
        model, max_sessions=2, idle_seconds=600, liveness_seconds=60, memory_bytes=2**20, clock=clock
    )
    yield sessions
    sessions.close()


def _client(sessions: ViewerSessions, key: str | None = KEY, max_body: int = 2**20) -> TestClient:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return TestClient(create_app(sessions, key, max_body), headers=headers)


def _claim(client: TestClient) -> dict[str, str]:
    response = client.post("/claim")
    assert response.status_code == 200, response.text
    return {"X-Lease-Token": response.json()["lease_token"]}


def _image(shape=(6, 32, 32)) -> np.ndarray:
    image = np.zeros((1, *shape), dtype=np.float32)
    image[0, :, 8:24, 8:24] = 100
    return image


def _set_image(client: TestClient, lease: dict[str, str], image: np.ndarray) -> None:
    headers = {**lease, "X-Meta": json.dumps({"image_properties": {"spacing": [2.0, 1.0, 1.0]}})}
    response = client.post("/set_image", content=pack_array(image), headers=headers)
    assert response.status_code == 200, response.text
    target = client.post("/set_target_buffer", json={"shape": list(image.shape[1:]), "dtype": "uint8"}, headers=lease)
    assert target.status_code == 200, target.text


def test_the_key_is_asked_everywhere_but_healthz(sessions) -> None:
    keyless = _client(sessions, key=None)
    keyless.headers.pop("Authorization", None)
    guarded = TestClient(create_app(sessions, KEY, 2**20))
    assert guarded.get("/healthz").json() == {"ok": True}
    assert guarded.get("/capabilities").status_code == 401
    assert guarded.post("/claim", headers={"Authorization": "Bearer wrong-key-wrong-key"}).status_code == 401
    assert guarded.get("/capabilities", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert keyless.get("/capabilities").status_code == 200  # a loopback server without a key


def test_bodies_over_the_cap_and_without_a_length_are_refused(sessions) -> None:
    client = _client(sessions, max_body=1000)
    lease = _claim(client)
    response = client.post("/set_image", content=b"x" * 2000, headers=lease)
    assert response.status_code == 413 and "at most 1000" in response.json()["detail"]


def test_a_malformed_image_body_is_a_one_line_400(sessions) -> None:
    client = _client(sessions)
    lease = _claim(client)
    response = client.post("/set_image", content=b"not an array", headers=lease)
    assert response.status_code == 400 and "NNIA" in response.json()["detail"]


def test_capacity_release_and_unknown_tokens(sessions) -> None:
    client = _client(sessions)
    first, _ = _claim(client), _claim(client)
    full = client.post("/claim")
    assert full.status_code == 503 and full.headers["Retry-After"]
    assert client.post("/release", headers=first).json() == {"released": True}
    assert client.post("/heartbeat", headers=first).status_code == 410
    assert client.post("/heartbeat").status_code == 410  # no token at all
    _claim(client)  # the released place is free


def test_liveness_and_idle_timeouts_end_sessions(sessions, clock) -> None:
    client = _client(sessions)
    lease = _claim(client)
    clock.now += 50
    assert client.post("/heartbeat", headers=lease).status_code == 200  # alive: renewed
    clock.now += 50
    assert client.post("/heartbeat", headers=lease).status_code == 200
    remaining = client.get("/lease_status", headers=lease).json()["remaining_seconds"]
    assert remaining == pytest.approx(500)  # heartbeats do not postpone the idle timeout
    clock.now += 61  # no request for longer than the liveness lease
    assert client.post("/heartbeat", headers=lease).status_code == 410
    other = _claim(client)
    clock.now += 601  # heartbeats alone, then idle past the timeout
    assert client.get("/lease_status", headers=other).status_code == 410


def test_an_image_past_the_memory_budget_is_refused(sessions) -> None:
    client = _client(sessions, max_body=64 * 2**20)
    lease = _claim(client)
    response = client.post("/set_image", content=pack_array(_image((16, 128, 128))), headers=lease)
    assert response.status_code == 507 and "does not fit" in response.json()["detail"]


def test_each_interaction_is_one_log_line_and_replies_only_the_changed_box(sessions, caplog) -> None:
    client = _client(sessions)
    lease = _claim(client)
    _set_image(client, lease, _image())
    with caplog.at_level(logging.INFO, logger="samia.serve"):
        response = client.post(
            "/add_bbox_interaction",
            json={"bbox_coords": [[3, 4], [8, 24], [8, 24]], "include_interaction": True},
            headers=lease,
        )
    assert response.status_code == 200, response.text
    meta = json.loads(response.headers["X-Meta"])
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("bbox ")]
    assert len(lines) == 1 and "slices=" in lines[0] and "ms=" in lines[0] and "decoded=" in lines[0]
    assert meta["ran_prediction"] is True
    if meta["bbox"] is not None:
        sub = unpack_array(response.content, max_elements=10**6)
        assert list(sub.shape) == [high - low for low, high in meta["bbox"]] and sub.dtype == np.uint8
    nothing = client.post("/predict", json={}, headers=lease)
    assert json.loads(nothing.headers["X-Meta"]) == {"ran_prediction": False, "bbox": None}


def test_an_interaction_before_an_image_or_target_is_a_409(sessions) -> None:
    client = _client(sessions)
    lease = _claim(client)
    response = client.post("/add_point_interaction", json={"coordinates": [1, 2, 3]}, headers=lease)
    assert response.status_code == 409 and "set_image" in response.json()["detail"]


def test_the_slicer_api_session_outlives_the_liveness_lease_and_ends_when_idle(sessions, clock) -> None:
    import io

    client = _client(sessions, key=None)
    buffer = io.BytesIO()
    np.save(buffer, _image()[0])  # the Slicer API takes the 3D array
    uploaded = client.post("/slicer/upload_image", files={"file": ("volume.npy", buffer.getvalue())})
    assert uploaded.json() == {"status": "ok"}
    click = {"voxel_coord": [3, 16, 16], "positive_click": True}
    clock.now += 61  # longer than the liveness lease: the older plugin sends no heartbeat
    assert client.post("/slicer/add_point_interaction", json=click).headers["Content-Type"] != "application/json"
    clock.now += 601  # idle past the timeout
    assert client.post("/slicer/add_point_interaction", json=click).json() == {
        "status": "error",
        "message": "No image uploaded",
    }
