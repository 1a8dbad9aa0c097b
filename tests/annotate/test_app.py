"""The annotation web API through FastAPI's test client: the whole flow, resume after a restart, the
security rules (token, origin, body cap, hostile paths, symlinks out) and bad requests (4xx with a
message, never a 500 with a traceback), two browsers on one case and on different cases."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from samia.annotate import read_log
from samia.annotate.app import MAX_BODY_BYTES, create_app
from samia.annotate.cases import find_cases, inside
from samia.annotate.server import AnnotationServer
from samia.errors import InputError
from samia.models import build_model

TOKEN = "test-token-0123456789"


def _headers(client: str = "browser0001") -> dict[str, str]:
    return {"X-Samia-Token": TOKEN, "X-Samia-Client": client}


def write_dataset(root: Path) -> Path:
    """images/ + masks/ with two good cases, one image without a mask and one corrupt image."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for name in ("case_a", "case_b", "unlabelled"):
        array = rng.normal(90, 8, (48, 64)).clip(0, 255)
        array[12:30, 20:44] += 90
        Image.fromarray(array.astype(np.uint8)).save(root / "images" / f"{name}.png")
        if name != "unlabelled":
            mask = np.zeros((48, 64), np.uint8)
            mask[12:30, 20:44] = 1
            Image.fromarray(mask).save(root / "masks" / f"{name}.png")
    (root / "images" / "zz_corrupt.png").write_bytes(b"not a png at all")
    return root


@pytest.fixture(scope="module")
def tiny_model():
    return build_model("tiny_sam")


@pytest.fixture
def served(tmp_path, tiny_model):
    data = write_dataset(tmp_path / "data")
    server = AnnotationServer(data, tmp_path / "out", tiny_model, model_name="tiny_sam")
    yield server, TestClient(create_app(server, TOKEN), raise_server_exceptions=False)
    server.close()


def _case(server: AnnotationServer, name: str) -> str:
    return next(room.case.id for room in server.rooms.values() if room.case.name == name)


def test_open_click_undo_box_accept_and_resume_after_a_restart(served, tmp_path, tiny_model) -> None:
    server, client = served
    case = _case(server, "case_a")
    state = client.post(f"/api/cases/{case}/open", json={}, headers=_headers()).json()
    assert state["shape"] == [48, 64] and state["label"] == 0 and state["mode"] == "assisted"
    assert client.post(f"/api/cases/{case}/object", json={"name": "lesion"}, headers=_headers()).json()["label"] == 1
    clicked = client.post(f"/api/cases/{case}/edit", json={"kind": "point", "coords": [30, 20]}, headers=_headers())
    assert clicked.status_code == 200 and clicked.json()["draft"]["edits"] == 1 and clicked.json()["can_undo"]
    assert clicked.json()["overlay"].startswith("data:image/png;base64,")
    undone = client.post(f"/api/cases/{case}/undo", json={}, headers=_headers()).json()
    assert undone["draft"]["edits"] == 0 and undone["can_redo"]
    boxed = client.post(f"/api/cases/{case}/edit", json={"kind": "box", "coords": [18, 10, 46, 32]}, headers=_headers())
    assert boxed.json()["draft"]["pixels"] > 0
    clicked = client.post(
        f"/api/cases/{case}/edit", json={"kind": "point", "coords": [5, 5], "positive": False}, headers=_headers()
    ).json()
    draft = server.rooms[case].session.draft.mask.copy()
    assert client.post(f"/api/cases/{case}/accept", json={}, headers=_headers()).status_code == 200
    saved = np.asarray(Image.open(tmp_path / "out" / "case_a" / "labels.png"))
    np.testing.assert_array_equal(saved == 1, draft)
    client.post(f"/api/cases/{case}/object", json={"name": "second"}, headers=_headers())
    client.post(f"/api/cases/{case}/edit", json={"kind": "box", "coords": [2, 2, 20, 20]}, headers=_headers())
    pending = server.rooms[case].session.draft.mask.copy()
    # a new server on the same folders resumes where the old one was (a killed server's folder lock
    # is freed by the kernel: tests/hostile/test_one_run_per_folder.py)
    server.close()
    again = AnnotationServer(tmp_path / "data", tmp_path / "out", tiny_model)
    resumed = TestClient(create_app(again, TOKEN)).post(f"/api/cases/{case}/open", json={}, headers=_headers()).json()
    assert resumed["label"] == 2 and resumed["draft"]["edits"] == 1
    assert [o["name"] for o in resumed["objects"]] == ["lesion", "second"] and resumed["objects"][0]["slices"] == [0]
    np.testing.assert_array_equal(again.rooms[case].session.draft.mask, pending)
    listing = {
        c["name"]: c for c in TestClient(create_app(again, TOKEN)).get("/api/cases", headers=_headers()).json()["cases"]
    }
    assert listing["case_a"]["status"] == "in progress" and listing["case_a"]["objects"] == 1
    assert listing["case_b"]["status"] == "new" and listing["unlabelled"]["ground_truth"] is False
    again.close()


def test_every_request_needs_the_token_and_the_same_origin(served) -> None:
    _, client = served
    assert client.get("/api/cases").status_code == 403
    assert client.get("/api/cases", headers={"X-Samia-Token": "wrong"}).status_code == 403
    assert client.get("/", params={"token": TOKEN[:-1]}).status_code == 403
    assert client.get("/api/cases", params={"token": TOKEN}).status_code == 200
    page = client.get("/", params={"token": TOKEN})
    assert page.status_code == 200 and f"app.js?token={TOKEN}" in page.text and "{{token}}" not in page.text
    assert client.get("/static/app.js", params={"token": TOKEN}).status_code == 200
    foreign = client.get("/api/cases", headers={**_headers(), "Origin": "http://evil.example"})
    assert foreign.status_code == 403 and "evil.example" in foreign.json()["detail"]
    assert "access-control-allow-origin" not in {k.lower() for k in foreign.headers}
    same = client.get("/api/cases", headers={**_headers(), "Origin": "http://testserver"})
    assert same.status_code == 200 and "access-control-allow-origin" not in {k.lower() for k in same.headers}
    preflight = client.options("/api/cases", headers={"Origin": "http://evil.example"})
    assert preflight.status_code == 403


def test_hostile_paths_are_refused(served, tmp_path) -> None:
    server, client = served
    for path in (
        "/static/../annotate/app.py",
        "/static/..%2Fapp.py",
        "/static/%2e%2e%2fapp.py",
        "/static/index.html",
        "/static/%2Fetc%2Fpasswd",
        "/api/cases/..%2F..%2Fetc%2Fpasswd/state",
        "/api/cases/%2Fetc%2Fpasswd/plane.png",
        "/api/cases/c1%2F..%2Fc2/state",
        "/api/cases/case_a/state",
    ):
        answer = client.get(path, headers=_headers())
        assert answer.status_code == 404, path
        assert "root:" not in answer.text and "import" not in answer.text
    # a case whose image is a symlink out of the data folder is never listed, only reported
    secret = tmp_path / "secret.png"
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(secret)
    (tmp_path / "data" / "images" / "escape.png").symlink_to(secret)
    cases, problems = find_cases(tmp_path / "data")
    assert "escape" not in {c.name for c in cases}
    assert any("escape.png" in str(p) and "outside" in str(p) for p in problems)
    with pytest.raises(InputError, match="outside"):
        inside(tmp_path / "data" / ".." / "secret.png", tmp_path / "data")
    with pytest.raises(InputError, match="outside"):
        inside(Path("/etc/passwd"), tmp_path / "data")
    assert inside(tmp_path / "data" / "images" / "case_a.png", tmp_path / "data").name == "case_a.png"


def test_bodies_are_capped_and_bad_requests_get_a_4xx_with_a_message(served) -> None:
    server, client = served
    case = _case(server, "case_a")
    client.post(f"/api/cases/{case}/open", json={}, headers=_headers())
    edit = f"/api/cases/{case}/edit"
    huge = client.post(edit, content=b"{" + b" " * (MAX_BODY_BYTES + 1) + b"}", headers=_headers())
    assert huge.status_code == 413
    first = client.post(edit, json={"kind": "point", "coords": [3, 3], "name": "lesion"}, headers=_headers())
    assert first.status_code == 200, first.text  # the first edit of an opened case starts object 1
    assert first.json()["label"] == 1 and first.json()["draft"]["edits"] == 1
    assert first.json()["objects"][0]["name"] == "lesion"
    too_long = client.post(edit, json={"kind": "point", "coords": [3, 3], "name": "x" * 201}, headers=_headers())
    assert too_long.status_code == 422
    json_headers = {**_headers(), "Content-Type": "application/json"}
    cases = [
        (client.post(edit, content=b"{not json", headers=json_headers), 422, "JSON"),
        (client.post(edit, json={"kind": "lasso", "coords": [1, 2]}, headers=_headers()), 422, "kind"),
        (client.post(edit, json={"kind": "point", "coords": [1, "x"]}, headers=_headers()), 422, "coords"),
        (client.post(edit, json={"kind": "point", "coords": [1, 2], "extra": 1}, headers=_headers()), 422, "extra"),
        (client.post(edit, content=b'{"kind": "point", "coords": [NaN, 2]}', headers=json_headers), 400, "finite"),
        (client.post(edit, json={"kind": "point", "coords": [900, 2]}, headers=_headers()), 400, "outside"),
        (client.post(edit, json={"kind": "box", "coords": [1, 2]}, headers=_headers()), 400, "4 numbers"),
        (client.post(edit, json={"kind": "brush", "coords": [1, 2]}, headers=_headers()), 400, "radius"),
        (client.post(edit, json={"kind": "polygon", "coords": [1, 2, 3, 4]}, headers=_headers()), 400, "3+"),
        (client.post(f"/api/cases/{case}/slice", json={"index": 5}, headers=_headers()), 400, "outside"),
        (client.post(f"/api/cases/{case}/slice", json={"index": -1}, headers=_headers()), 422, "index"),
        (client.post(f"/api/cases/{case}/preset", json={"name": "nope"}, headers=_headers()), 422, "preset"),
        (client.post(f"/api/cases/{case}/propagate", json={}, headers=_headers()), 400, "volume"),
        (client.get(f"/api/cases/{case}/plane.png", params={"index": "x"}, headers=_headers()), 422, "index"),
        (client.post(edit, json={"kind": "point", "coords": [1, 2]}, headers={"X-Samia-Token": TOKEN}), 400, "Client"),
        (client.post("/api/cases/c999/open", json={}, headers=_headers()), 404, "c999"),
    ]
    for answer, status, words in cases:
        assert answer.status_code == status, (answer.status_code, answer.text)
        assert words.lower() in answer.json()["detail"].lower() and "Traceback" not in answer.text


def test_an_unreadable_case_reports_its_error_and_the_others_stay_usable(served, tmp_path) -> None:
    server, client = served
    broken = _case(server, "zz_corrupt")
    answer = client.post(f"/api/cases/{broken}/open", json={}, headers=_headers())
    assert answer.status_code == 422 and "zz_corrupt.png" in answer.json()["detail"]
    listing = {c["name"]: c for c in client.get("/api/cases", headers=_headers()).json()["cases"]}
    assert listing["zz_corrupt"]["status"] == "error" and "zz_corrupt.png" in listing["zz_corrupt"]["error"]
    errors = [e for e in read_log(tmp_path / "out") if e["kind"] == "error"]
    assert errors and "zz_corrupt.png" in errors[0]["details"]["problem"]
    good = _case(server, "case_b")
    assert client.post(f"/api/cases/{good}/open", json={}, headers=_headers()).status_code == 200


def test_two_browsers_on_one_case_are_told_and_on_two_cases_work_at_once(served) -> None:
    server, client = served
    first, second = _case(server, "case_a"), _case(server, "case_b")
    alice, bob = _headers("alice00001"), _headers("bob0000001")
    assert client.post(f"/api/cases/{first}/open", json={}, headers=alice).status_code == 200
    refused = client.post(f"/api/cases/{first}/open", json={}, headers=bob)
    assert refused.status_code == 409 and "open in another browser" in refused.json()["detail"]
    assert client.post(f"/api/cases/{first}/undo", json={}, headers=bob).status_code == 409
    assert client.post(f"/api/cases/{second}/open", json={}, headers=bob).status_code == 200
    seen_by_bob = {c["id"]: c["open_elsewhere"] for c in client.get("/api/cases", headers=bob).json()["cases"]}
    assert seen_by_bob[first] and not seen_by_bob[second]
    client.post(f"/api/cases/{first}/object", json={}, headers=alice)
    client.post(f"/api/cases/{second}/object", json={}, headers=bob)
    answers: list[int] = []

    def clicks(case: str, headers: dict[str, str]) -> None:
        for step in range(6):
            body = {"kind": "point", "coords": [20 + step, 15 + step], "positive": True}
            answers.append(client.post(f"/api/cases/{case}/edit", json=body, headers=headers).status_code)

    threads = [
        threading.Thread(target=clicks, args=(first, alice)),
        threading.Thread(target=clicks, args=(second, bob)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 12
    assert len(server.rooms[first].session.draft.edits) == 6 and len(server.rooms[second].session.draft.edits) == 6
    # taking a case over: the first browser is told on its next request
    assert client.post(f"/api/cases/{first}/open", json={"force": True}, headers=bob).status_code == 200
    assert client.post(f"/api/cases/{first}/undo", json={}, headers=alice).status_code == 409
    assert client.post(f"/api/cases/{first}/close", json={}, headers=bob).status_code == 200
    assert client.post(f"/api/cases/{first}/open", json={}, headers=alice).status_code == 200


def test_requests_on_one_case_are_serialised(served) -> None:
    server, client = served
    case = _case(server, "case_a")
    client.post(f"/api/cases/{case}/open", json={}, headers=_headers())
    client.post(f"/api/cases/{case}/object", json={}, headers=_headers())
    strokes = [{"kind": "brush", "coords": [4 * i, 4, 4 * i, 40], "radius": 1} for i in range(1, 13)]
    threads = [
        threading.Thread(
            target=client.post, args=(f"/api/cases/{case}/edit",), kwargs={"json": s, "headers": _headers()}
        )
        for s in strokes
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    draft = server.rooms[case].session.draft
    assert len(draft.edits) == 12 and all(draft.mask[20, 4 * i] for i in range(1, 13))  # none lost


def test_planes_are_encoded_ahead_so_a_click_does_not_wait_for_the_encoder(served) -> None:
    server, client = served
    case = _case(server, "case_a")
    client.post(f"/api/cases/{case}/open", json={}, headers=_headers())
    assert server.prefetcher.idle(timeout=120)
    assert server.prefetcher.encoded >= 2  # this case's plane and the next case's
    client.post(f"/api/cases/{case}/object", json={}, headers=_headers())
    client.post(f"/api/cases/{case}/edit", json={"kind": "point", "coords": [30, 20]}, headers=_headers())
    assert server.rooms[case].session.predictor.encoder_calls == 0  # found in the shared cache
    following = _case(server, "case_b")
    client.post(f"/api/cases/{following}/open", json={}, headers=_headers())
    client.post(f"/api/cases/{following}/object", json={}, headers=_headers())
    client.post(f"/api/cases/{following}/edit", json={"kind": "point", "coords": [30, 20]}, headers=_headers())
    assert server.rooms[following].session.predictor.encoder_calls == 0


def test_cases_come_from_a_dataset_a_plain_folder_or_one_file(tmp_path) -> None:
    data = write_dataset(tmp_path / "data")
    cases, problems = find_cases(data)
    assert [c.name for c in cases] == ["case_a", "case_b", "unlabelled", "zz_corrupt"]
    assert [c.ground_truth is not None for c in cases] == [True, True, False, False] and problems == []
    assert [c.id for c in cases] == ["c1", "c2", "c3", "c4"]
    loose = tmp_path / "loose"
    loose.mkdir()
    for name in ("scan 1.png", "scan#2.png", ".hidden.png"):
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(loose / name)
    (loose / "notes.txt").write_text("not an image")
    assert [c.name for c in find_cases(loose)[0]] == ["scan_1", "scan_2"]  # plain names, hidden skipped
    single = find_cases(loose / "scan 1.png")[0]
    assert len(single) == 1 and single[0].image_path == (loose / "scan 1.png").resolve()


def test_the_next_volume_is_encoded_on_the_slice_it_opens_on(tmp_path, tiny_model) -> None:
    import SimpleITK as sitk

    data = tmp_path / "volumes"
    data.mkdir()
    rng = np.random.default_rng(3)
    for name in ("vol_a", "vol_b"):
        sitk.WriteImage(
            sitk.GetImageFromArray(rng.normal(100, 20, (7, 32, 40)).astype(np.float32)), str(data / f"{name}.nii.gz")
        )
    server = AnnotationServer(data, tmp_path / "out", tiny_model)
    client = TestClient(create_app(server, TOKEN))
    client.post("/api/cases/c1/open", json={}, headers=_headers())
    assert server.prefetcher.idle(timeout=120)
    opened = client.post("/api/cases/c2/open", json={}, headers=_headers()).json()
    assert opened["slice"] == 3  # a volume opens on its middle slice
    client.post("/api/cases/c2/object", json={}, headers=_headers())
    client.post("/api/cases/c2/edit", json={"kind": "point", "coords": [20, 16]}, headers=_headers())
    assert server.rooms["c2"].session.predictor.encoder_calls == 0
    server.close()


def test_a_named_rater_is_listed_and_their_folder_is_theirs(tmp_path, tiny_model) -> None:
    from samia.errors import ConfigurationError

    data = write_dataset(tmp_path / "data")
    server = AnnotationServer(data, tmp_path / "alice", tiny_model, rater="alice")
    client = TestClient(create_app(server, TOKEN))
    assert client.get("/api/cases", headers=_headers()).json()["rater"] == "alice"
    client.post(f"/api/cases/{_case(server, 'case_a')}/open", json={}, headers=_headers())  # logged: work begun
    server.close()
    with pytest.raises(ConfigurationError, match="holds the annotations of rater 'alice', not of rater 'bob'"):
        AnnotationServer(data, tmp_path / "alice", tiny_model, rater="bob")
    with pytest.raises(ConfigurationError, match="not of an unnamed rater"):
        AnnotationServer(data, tmp_path / "alice", tiny_model)
    again = AnnotationServer(data, tmp_path / "alice", tiny_model, rater="alice")  # the folder was released
    again.close()
