"""Annotation work is never lost (issue 25, item 6): leases hand a case between browsers (claim,
heartbeat, expiry, take-over, each told by name), one server per annotation folder, "New" never
drops a mask not yet accepted, and a label file edited on disk while its case is open is kept.

Lease time runs on a clock the tests move, so nothing depends on the machine's speed."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from test_app import TOKEN, _case, _headers, write_dataset

from samia.annotate import AnnotationSession, Edit, read_log
from samia.annotate.app import create_app
from samia.annotate.server import AnnotationServer
from samia.annotate.session import DraftNotAcceptedError
from samia.errors import ConfigurationError, LabelFileChangedError
from samia.leases import HeldElsewhereError, LeaseLostError, Leases
from samia.types import Image2D

ALICE, BOB = _headers("alice00001"), _headers("bob0000001")


class Clock:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_lease_is_claimed_renewed_released_expires_and_is_taken_over() -> None:
    clock = Clock()
    leases = Leases(30, describe=lambda item: f"case {item}", clock=clock)
    leases.claim("a", "alice")
    with pytest.raises(HeldElsewhereError, match=r"case a is open in another browser \(active 0 s ago\)"):
        leases.claim("a", "bob")
    clock.now += 20
    leases.renew("a", "alice")  # a heartbeat
    clock.now += 20
    assert leases.holder("a") == "alice"  # 40 s after the claim, 20 s after the heartbeat
    with pytest.raises(HeldElsewhereError, match="active 20 s ago"):
        leases.claim("a", "bob")
    clock.now += 11
    assert leases.holder("a") is None and leases.expired() == ["a"] and leases.expired() == []
    leases.renew("a", "alice")  # expired, nobody claimed it: given back
    assert leases.holder("a") == "alice"
    leases.claim("a", "bob", take_over=True)
    with pytest.raises(LeaseLostError, match="case a was taken over by another browser") as lost:
        leases.renew("a", "alice")
    assert lost.value.taken_over
    assert not leases.release("a", "alice") and leases.release("a", "bob") and leases.holder("a") is None
    with pytest.raises(LeaseLostError, match="not open in this browser") as never:
        leases.renew("b", "carol")
    assert not never.value.taken_over


@pytest.fixture
def served(tmp_path, tiny_model):
    clock = Clock()
    server = AnnotationServer(write_dataset(tmp_path / "data"), tmp_path / "out", tiny_model, lease_clock=clock)
    yield server, TestClient(create_app(server, TOKEN), raise_server_exceptions=False), clock
    server.close()


@pytest.fixture(scope="module")
def tiny_model():
    from samia.models import build_model

    return build_model("tiny_sam")


def test_a_page_that_went_away_loses_its_case_to_the_next_without_a_409(served) -> None:
    server, client, clock = served
    case = _case(server, "case_a")
    assert client.post(f"/api/cases/{case}/open", json={}, headers=ALICE).json()["lease_seconds"] == 30
    client.post(f"/api/cases/{case}/object", json={}, headers=ALICE)
    client.post(f"/api/cases/{case}/edit", json={"kind": "box", "coords": [18, 10, 46, 32]}, headers=ALICE)
    clock.now += 25
    assert client.post(f"/api/cases/{case}/heartbeat", json={}, headers=ALICE).status_code == 200
    clock.now += 25  # 50 s after opening, 25 s after the heartbeat: still Alice's
    held = client.post(f"/api/cases/{case}/open", json={}, headers=BOB)
    assert held.status_code == 409 and held.json()["reason"] == "held"
    assert "case case_a is open in another browser (active 25 s ago)" in held.json()["detail"]
    clock.now += 6  # Alice's page is gone (closed laptop, crashed tab): no heartbeat for 31 s
    taken = client.post(f"/api/cases/{case}/open", json={}, headers=BOB)
    assert taken.status_code == 200 and taken.json()["draft"]["edits"] == 1  # her draft, resumed from disk
    told = client.post(f"/api/cases/{case}/undo", json={}, headers=ALICE)
    assert told.status_code == 409 and told.json()["reason"] == "taken_over"
    assert "case case_a was taken over by another browser; what you did before is saved" in told.json()["detail"]
    assert client.post(f"/api/cases/{case}/heartbeat", json={}, headers=ALICE).json()["reason"] == "taken_over"
    assert server.rooms[case].session.draft.edits  # Bob's session is untouched by her requests


def test_an_expired_case_nobody_claimed_is_given_back_and_its_memory_freed(served) -> None:
    server, client, clock = served
    case = _case(server, "case_a")
    client.post(f"/api/cases/{case}/open", json={}, headers=ALICE)
    client.post(f"/api/cases/{case}/object", json={}, headers=ALICE)
    client.post(f"/api/cases/{case}/edit", json={"kind": "point", "coords": [30, 20]}, headers=ALICE)
    clock.now += 31
    client.get("/api/cases", headers=BOB)  # any request sweeps expired leases
    assert server.rooms[case].session is None
    back = client.post(f"/api/cases/{case}/heartbeat", json={}, headers=ALICE)
    assert back.status_code == 200
    undone = client.post(f"/api/cases/{case}/undo", json={}, headers=ALICE)
    assert undone.status_code == 200 and undone.json()["draft"]["edits"] == 0 and undone.json()["can_redo"]


def test_closing_the_page_frees_the_case_and_its_session(served) -> None:
    server, client, _ = served
    first, second = _case(server, "case_a"), _case(server, "case_b")
    client.post(f"/api/cases/{first}/open", json={}, headers=ALICE)
    client.post(f"/api/cases/{second}/open", json={}, headers=ALICE)  # opening another releases the first
    assert server.rooms[first].session is None and server.leases.holder(first) is None
    client.post(f"/api/cases/{second}/close", json={}, headers=ALICE)
    assert server.rooms[second].session is None
    assert client.post(f"/api/cases/{second}/open", json={}, headers=BOB).status_code == 200


def test_a_second_server_on_one_annotation_folder_is_refused(served, tmp_path, tiny_model) -> None:
    with pytest.raises(ConfigurationError, match=r"out is in use by another samia process \(pid \d+\)"):
        AnnotationServer(tmp_path / "data", tmp_path / "out", tiny_model)


def test_new_slice_or_window_never_drop_a_mask_not_yet_accepted(served, tmp_path) -> None:
    server, client, _ = served
    case = _case(server, "case_a")
    client.post(f"/api/cases/{case}/open", json={}, headers=ALICE)
    client.post(f"/api/cases/{case}/object", json={"name": "lesion"}, headers=ALICE)
    client.post(f"/api/cases/{case}/edit", json={"kind": "box", "coords": [18, 10, 46, 32]}, headers=ALICE)
    drawn = server.rooms[case].session.draft.mask.copy()
    for action, body in (("object", {"name": "second"}), ("preset", {"name": "passthrough"})):
        refused = client.post(f"/api/cases/{case}/{action}", json=body, headers=ALICE)
        assert refused.status_code == 409 and refused.json()["reason"] == "unaccepted"
        assert refused.json()["detail"].startswith(f"object 1 has a mask of {int(drawn.sum())} pixels that is not")
        np.testing.assert_array_equal(server.rooms[case].session.draft.mask, drawn)
    client.post(f"/api/cases/{case}/accept", json={}, headers=ALICE)
    assert client.post(f"/api/cases/{case}/object", json={"name": "second"}, headers=ALICE).json()["label"] == 2
    saved = np.asarray(Image.open(tmp_path / "out" / "case_a" / "labels.png"))
    np.testing.assert_array_equal(saved == 1, drawn)
    client.post(f"/api/cases/{case}/edit", json={"kind": "brush", "coords": [2, 2, 8, 2], "radius": 1}, headers=ALICE)
    stroke = int(server.rooms[case].session.draft.mask.sum())
    dropped = client.post(f"/api/cases/{case}/object", json={"name": "third", "discard": True}, headers=ALICE)
    assert dropped.status_code == 200 and dropped.json()["label"] == 3
    assert [e["details"]["pixels"] for e in read_log(tmp_path / "out") if e["kind"] == "discard"] == [stroke]


def test_undoing_every_edit_or_redrawing_the_accepted_mask_is_not_unaccepted_work(tmp_path) -> None:
    image = Image2D(np.zeros((32, 32), np.float32), modality="MR")
    session = AnnotationSession(image, tmp_path, "case")
    session.new_object("a")
    session.edit(Edit("brush", (5.0, 5.0, 9.0, 5.0), radius=1))
    session.undo()
    session.new_object("b")  # nothing applied: nothing to lose
    session.edit(Edit("brush", (5.0, 5.0, 9.0, 5.0), radius=1))
    session.accept()
    session.edit(Edit("brush", (5.0, 5.0, 9.0, 5.0), radius=1))  # the same mask again
    assert not session.has_unaccepted_draft
    session.edit(Edit("erase", (5.0, 5.0), radius=1))
    with pytest.raises(DraftNotAcceptedError, match="before starting object 3"):
        session.new_object("c")


def test_a_label_file_edited_on_disk_while_its_case_is_open_is_kept(served, tmp_path) -> None:
    server, client, _ = served
    case = _case(server, "case_a")
    client.post(f"/api/cases/{case}/open", json={}, headers=ALICE)
    client.post(f"/api/cases/{case}/object", json={}, headers=ALICE)
    client.post(f"/api/cases/{case}/edit", json={"kind": "brush", "coords": [3, 3], "radius": 2}, headers=ALICE)
    client.post(f"/api/cases/{case}/accept", json={}, headers=ALICE)
    label_file = tmp_path / "out" / "case_a" / "labels.png"
    by_hand = np.zeros((48, 64), np.uint8)
    by_hand[40:45, 50:60] = 7  # someone fixes the file in another tool meanwhile
    Image.fromarray(by_hand).save(label_file)
    edited = label_file.read_bytes()
    client.post(f"/api/cases/{case}/object", json={}, headers=ALICE)
    client.post(f"/api/cases/{case}/edit", json={"kind": "brush", "coords": [20, 20], "radius": 2}, headers=ALICE)
    refused = client.post(f"/api/cases/{case}/accept", json={}, headers=ALICE)
    assert refused.status_code == 422
    assert refused.json()["detail"] == (
        f"{label_file}: was changed on disk while this case was open; it is kept as it is and nothing was "
        "written: open the case again to continue from it (the object being drawn is kept)"
    )
    assert label_file.read_bytes() == edited
    reopened = client.post(f"/api/cases/{case}/open", json={}, headers=ALICE).json()
    assert reopened["label"] == 2 and reopened["draft"]["edits"] == 1  # the stroke drawn is still there
    client.post(f"/api/cases/{case}/accept", json={}, headers=ALICE)
    saved = np.asarray(Image.open(label_file))
    assert (saved[40:45, 50:60] == 7).all() and saved[20, 20] == 2 and saved[3, 3] == 0


def test_a_session_refuses_to_write_over_a_changed_label_file(tmp_path) -> None:
    image = Image2D(np.zeros((32, 32), np.float32), modality="MR")
    session = AnnotationSession(image, tmp_path, "case")
    session.new_object("a")
    session.edit(Edit("brush", (5.0, 5.0), radius=1))
    session.accept()
    Image.fromarray(np.full((32, 32), 3, np.uint8)).save(session.label_path)
    session.edit(Edit("brush", (20.0, 20.0), radius=1))
    with pytest.raises(LabelFileChangedError, match="labels.png: was changed on disk"):
        session.accept()
    assert (np.asarray(Image.open(session.label_path)) == 3).all()
    assert session.has_unaccepted_draft  # the draft is still there
    assert [e["details"] for e in read_log(tmp_path) if e["kind"] == "external_change"] == [
        {"file": "labels.png", "refused": "write"}
    ]
