"""The annotation session engine: SAM's interactive rule (logits fed back), strokes, undo/redo,
accept and autosave on the source grid, resume after a kill, hand-edited files kept, the log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from samia.annotate import AnnotationSession, Edit, read_log
from samia.errors import ConfigurationError
from samia.models import build_model
from samia.predictor import SamiaPredictor
from samia.types import Image2D, Prompt, Volume


def _image(seed: int = 0) -> Image2D:
    rng = np.random.default_rng(seed)
    array = rng.normal(100, 10, (48, 64))
    array[12:30, 20:44] += 80
    return Image2D(array.astype(np.float32), modality="MR")


def _predictor() -> SamiaPredictor:
    return SamiaPredictor(build_model("tiny_sam"))


def test_every_click_feeds_the_previous_logits_back(tmp_path) -> None:
    session = AnnotationSession(_image(), tmp_path, "case_a", _predictor())
    session.new_object("lesion")
    first = session.edit(Edit("point", (30.0, 20.0)))
    second = session.edit(Edit("point", (10.0, 40.0), positive=False))
    third = session.edit(Edit("box", (18.0, 10.0, 46.0, 32.0)))
    # the rule, written from SAM's interactive use: lone first click -> best of 3 by predicted IoU;
    # then single-mask output with mask_input = the previous answer's low-res logits
    reference = _predictor()
    reference.set_image(session.plane_rgb())
    one = reference.predict(Prompt(points=np.array([[30.0, 20.0]]), labels=np.array([1])), multimask_output=True)
    best = one.best_index
    np.testing.assert_array_equal(first.model_mask, one.masks[best])
    points, labels = np.array([[30.0, 20.0], [10.0, 40.0]]), np.array([1, 0])
    two = reference.predict(Prompt(points=points, labels=labels, mask_input=one.low_res_logits[best]), False)
    np.testing.assert_array_equal(second.model_mask, two.masks[0])
    box = np.array([18.0, 10.0, 46.0, 32.0])
    three = reference.predict(Prompt(points=points, labels=labels, box=box, mask_input=two.low_res_logits[0]), False)
    np.testing.assert_array_equal(third.model_mask, three.masks[0])
    events = [e for e in read_log(tmp_path) if e["kind"] in ("point", "box")]
    assert [e["kind"] for e in events] == ["point", "point", "box"]
    assert all(e["latency_ms"] >= 0 and e["case"] == "case_a" and e["object"] == 1 for e in events)


def test_strokes_undo_redo_and_accept_write_the_label_map(tmp_path) -> None:
    session = AnnotationSession(_image(), tmp_path, "manual")  # no model: the manual baseline
    label = session.new_object("organ")
    with pytest.raises(ValueError, match="manual mode"):
        session.edit(Edit("point", (5.0, 5.0)))
    session.edit(Edit("brush", (10.0, 10.0, 30.0, 10.0), radius=3))
    painted = session.draft.mask.copy()
    assert painted[10, 10:31].all() and painted[7:14, 20].all() and not painted[20:].any()
    session.edit(Edit("erase", (20.0, 10.0), radius=2))
    assert not session.draft.mask[10, 20] and session.draft.mask[10, 12]
    session.undo()
    np.testing.assert_array_equal(session.draft.mask, painted)
    assert session.can_redo
    session.redo()
    assert not session.draft.mask[10, 20]
    session.undo()
    session.edit(Edit("brush", (40.0, 30.0), radius=4))  # a new edit drops the redo history
    assert not session.can_redo and session.draft.mask[30, 40] and session.draft.mask[10, 20]
    path = session.accept()
    saved = np.asarray(Image.open(path))
    assert saved.shape == (48, 64) and set(np.unique(saved)) == {0, label}
    np.testing.assert_array_equal(saved == label, session.plane_labels() == label)
    second = session.new_object("other")
    session.edit(Edit("brush", (10.0, 10.0, 15.0, 10.0), radius=2))  # over the first object
    session.accept()
    saved = np.asarray(Image.open(path))
    assert saved[10, 12] == second and saved[30, 40] == label
    accepts = [e for e in read_log(tmp_path) if e["kind"] == "accept"]
    assert accepts[0]["details"]["edits"] == {"point": 0, "box": 0, "brush": 2, "erase": 0, "polygon": 0}
    assert accepts[0]["details"]["first_mask"] is False and accepts[0]["mode"] == "manual"


def test_a_reopened_session_is_exactly_where_it_was(tmp_path) -> None:
    session = AnnotationSession(_image(), tmp_path, "case_b", _predictor())
    session.new_object("first")
    session.edit(Edit("box", (18.0, 10.0, 46.0, 32.0)))
    session.accept()
    session.new_object("second")
    session.edit(Edit("point", (30.0, 20.0)))
    session.edit(Edit("point", (25.0, 15.0)))
    session.edit(Edit("brush", (5.0, 5.0, 9.0, 5.0), radius=2))
    session.undo()
    again = AnnotationSession(_image(), tmp_path, "case_b", _predictor())
    assert again.label == session.label and again.names == session.names
    np.testing.assert_array_equal(again.draft.mask, session.draft.mask)
    np.testing.assert_array_equal(again.labels, session.labels)
    assert again.can_redo and again.redo().mask[5, 7]


def test_a_killed_process_resumes_its_case(tmp_path) -> None:
    script = textwrap.dedent(
        f"""
        import os, signal, numpy as np
        from samia.annotate import AnnotationSession, Edit
        from samia.types import Image2D
        image = Image2D(np.arange(48 * 64, dtype=np.float32).reshape(48, 64), modality="MR")
        session = AnnotationSession(image, {str(tmp_path)!r}, "killed")
        session.new_object("a")
        session.edit(Edit("brush", (10.0, 10.0, 20.0, 10.0), radius=2))
        session.accept()
        session.new_object("b")
        session.edit(Edit("brush", (30.0, 30.0), radius=3))
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr
    image = Image2D(np.arange(48 * 64, dtype=np.float32).reshape(48, 64), modality="MR")
    resumed = AnnotationSession(image, tmp_path, "killed")
    assert resumed.label == 2 and resumed.draft.mask[30, 30] and resumed.plane_labels()[10, 15] == 1
    assert not any(p.name.startswith(".") for p in (tmp_path / "killed").iterdir())  # no partial left


def test_a_hand_edited_label_file_is_kept(tmp_path) -> None:
    session = AnnotationSession(_image(), tmp_path, "case_c")
    session.new_object("a")
    session.edit(Edit("brush", (10.0, 10.0), radius=3))
    session.accept()
    by_hand = np.zeros((48, 64), np.uint8)
    by_hand[40:45, 50:60] = 7
    Image.fromarray(by_hand).save(session.label_path)
    again = AnnotationSession(_image(), tmp_path, "case_c")
    np.testing.assert_array_equal(again.labels, by_hand)
    assert any(e["kind"] == "external_change" for e in read_log(tmp_path))
    again.new_object("b")
    again.edit(Edit("brush", (5.0, 5.0), radius=1))
    again.accept()
    saved = np.asarray(Image.open(again.label_path))
    assert (saved[40:45, 50:60] == 7).all() and saved[5, 5] == 8


def test_volume_slices_are_annotated_on_the_volume_grid(tmp_path) -> None:
    import SimpleITK as sitk

    array = np.random.default_rng(0).normal(0, 1, (6, 32, 40)).astype(np.float32)
    volume = Volume(array, spacing=(3.0, 0.7, 0.8), modality="MR")
    session = AnnotationSession(volume, tmp_path, "vol", _predictor())
    with pytest.raises(ValueError, match="outside the case"):
        session.go_to(6)
    session.go_to(4)
    session.new_object("lesion")
    session.edit(Edit("point", (20.0, 16.0)))
    session.edit(Edit("brush", (3.0, 3.0), radius=2))
    mask = session.draft.mask.copy()
    session.accept()
    saved = sitk.ReadImage(str(session.label_path))
    np.testing.assert_allclose(saved.GetSpacing(), (0.8, 0.7, 3.0))
    labels = sitk.GetArrayFromImage(saved)
    np.testing.assert_array_equal(labels[4] == 1, mask)
    assert not labels[[0, 1, 2, 3, 5]].any()
    assert json.loads((tmp_path / "vol" / "state.json").read_text())["accepted"] == {"1": [4]}


def test_a_case_id_is_a_name_not_a_path(tmp_path) -> None:
    for hostile in ("../outside", "/etc/passwd", "a/b", ".hidden", "..", ""):
        with pytest.raises(ConfigurationError, match="not a plain name"):
            AnnotationSession(_image(), tmp_path, hostile)
    assert not (tmp_path.parent / "outside").exists()


def test_a_torn_last_log_line_is_skipped(tmp_path) -> None:
    session = AnnotationSession(_image(), tmp_path, "case_d")
    session.new_object()
    with (tmp_path / "log.jsonl").open("a") as handle:
        handle.write('{"time": 1, "kind": "poi')
    assert [e["kind"] for e in read_log(tmp_path)] == ["open", "new_object"]
    assert os.path.getsize(tmp_path / "log.jsonl") > 0


@pytest.mark.real_weights
def test_propagation_fills_the_volume_and_keeps_the_users_slices(tmp_path) -> None:
    from samia.data.phantoms import volume_case
    from samia.volume import KeySlice, VolumePrompt, VolumeSession, segment_volume

    volume, labels = volume_case(np.random.default_rng(0), depth=12, side=64, n_objects=1)
    session = AnnotationSession(volume, tmp_path, "vol", SamiaPredictor(build_model("litemedsam")))
    with pytest.raises(ValueError, match="no mask"):
        session.new_object("ellipsoid")
        session.propagate()
    session.go_to(6)
    rows, cols = np.nonzero(labels[6] == 1)
    session.edit(Edit("brush", (float(cols.mean()), float(rows.mean())), radius=5))  # the key slice, by hand
    key = session.draft.mask.copy()
    session.accept()
    written = session.propagate()
    with VolumeSession(SamiaPredictor(build_model("litemedsam")), volume, session.preset) as reference:
        expected = segment_volume(reference, [VolumePrompt(key_slices=(KeySlice(6, mask=key),))]).objects[0].mask
    assert len(written) >= 4 and written == [i for i in range(12) if i != 6 and expected[i].any()]
    np.testing.assert_array_equal(session.labels[6] == 1, key)
    for index in written:
        np.testing.assert_array_equal(session.labels[index] == 1, expected[index])
    state = json.loads((tmp_path / "vol" / "state.json").read_text())
    assert state["accepted"] == {"1": [6]} and state["propagated"] == {"1": written}
    assert AnnotationSession(volume, tmp_path, "vol").propagated == {1: written}
    with pytest.raises(ValueError, match="2D image"):
        AnnotationSession(_image(), tmp_path, "flat", _predictor()).propagate()


def test_a_polygon_fills_its_outline(tmp_path) -> None:
    from skimage.draw import polygon as rasterize

    session = AnnotationSession(_image(), tmp_path, "poly")
    session.new_object("organ")
    vertices = (10.0, 5.0, 50.0, 12.0, 40.0, 40.0, 12.0, 30.0)
    drawn = session.edit(Edit("polygon", vertices)).mask
    # an independent rasterisation (pixel centres inside the polygon): all of it is filled, and
    # nothing more than one pixel beyond it
    rows, cols = rasterize(np.array(vertices[1::2]), np.array(vertices[0::2]), drawn.shape)
    inner = np.zeros_like(drawn)
    inner[rows, cols] = True
    from scipy import ndimage

    assert drawn[inner].all() and not (drawn & ~ndimage.binary_dilation(inner, iterations=1)).any()
    with pytest.raises(ValueError, match="3\\+ x, y pairs"):
        Edit("polygon", (1.0, 2.0, 3.0, 4.0))


def test_the_window_is_kept_and_every_event_says_its_mode(tmp_path) -> None:
    from samia.transforms import get_preset

    session = AnnotationSession(_image(), tmp_path, "window", _predictor())
    session.new_object()
    session.set_preset(get_preset("passthrough"))
    session.edit(Edit("point", (30.0, 20.0)))
    again = AnnotationSession(_image(), tmp_path, "window", _predictor())
    assert again.preset.name == "passthrough"
    np.testing.assert_array_equal(again.draft.mask, session.draft.mask)
    assert {e["mode"] for e in read_log(tmp_path)} == {"assisted"}
    assert "preset" in [e["kind"] for e in read_log(tmp_path)]


def test_a_dicom_series_is_also_saved_as_a_dicom_seg(tmp_path) -> None:
    import highdicom as hd
    import pydicom
    from clinical_files import write_ct_series

    from samia.io import read_image

    hounsfield = np.full((4, 24, 28), -700)
    hounsfield[:, 6:16, 8:20] = 60
    files = write_ct_series(tmp_path / "series", hounsfield)
    session = AnnotationSession(read_image(tmp_path / "series"), tmp_path / "out", "ct", source=tmp_path / "series")
    session.go_to(2)
    session.new_object("lesion")
    session.edit(Edit("polygon", (8.0, 6.0, 19.0, 6.0, 19.0, 15.0, 8.0, 15.0)))
    session.accept()
    seg = hd.seg.segread(tmp_path / "out" / "ct" / "labels.seg.dcm")
    uids = [str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files]
    labels = np.asarray(seg.get_pixels_by_source_instance(uids, combine_segments=True))
    np.testing.assert_array_equal(labels, session.labels)
    assert labels[2, 6:16, 8:20].all() and not labels[[0, 1, 3]].any()
    assert seg.get_segment_description(1).SegmentLabel == "lesion"


@pytest.mark.real_weights
def test_a_correction_re_propagates_only_the_slices_it_changes(tmp_path) -> None:
    from samia.data.phantoms import volume_case
    from samia.volume import KeySlice, VolumePrompt, VolumeSession, segment_volume

    volume, labels = volume_case(np.random.default_rng(1), depth=30, side=64, n_objects=1)
    model = build_model("litemedsam", backend="auto")
    session = AnnotationSession(volume, tmp_path, "vol", SamiaPredictor(model))
    session.new_object("ellipsoid")

    def draw(index: int) -> np.ndarray:
        session.go_to(index)
        rows, cols = np.nonzero(labels[index] == 1)
        session.edit(Edit("brush", (float(cols.mean()), float(rows.mean())), radius=6))
        return session.draft.mask.copy()

    first_key = draw(14)
    session.accept()
    session.propagate()
    before = session.labels.copy()
    second_key = draw(20)
    changed = session.propagate()
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    first, second = [e["details"] for e in log if e["kind"] == "propagate"]
    # slice 14's chains already ran (settled): only slice 20's chains run, down to 18 and up until
    # they match the object as it stood on two consecutive slices
    assert second["decoded"] < first["decoded"] and second["keys"] == [14, 20]
    assert changed and set(changed) <= set(range(18, 30)) and 20 not in changed
    np.testing.assert_array_equal(session.labels[:18], before[:18])
    # every slice it wrote is what a fresh propagation from both keys gives there
    keys = (KeySlice(14, mask=first_key), KeySlice(20, mask=second_key))
    with VolumeSession(SamiaPredictor(model), volume, session.preset) as reference:
        fresh = segment_volume(reference, [VolumePrompt(key_slices=keys)]).objects[0].mask
    for index in changed:
        np.testing.assert_array_equal(session.labels[index] == 1, fresh[index])


def test_a_sam_2_model_propagates_with_its_memory(tmp_path) -> None:
    pytest.importorskip("sam2", reason="samia[sam2] is not installed")
    from samia.data.phantoms import volume_case
    from samia.volume import KeySlice, VolumePrompt, VolumeSession
    from samia.volume.memory import segment_volume_with_memory

    volume, labels = volume_case(np.random.default_rng(0), depth=8, side=48, n_objects=1)
    session = AnnotationSession(volume, tmp_path, "vol", SamiaPredictor(build_model("tiny_sam2")))
    session.new_object("ellipsoid")
    session.go_to(4)
    rows, cols = np.nonzero(labels[4] == 1)
    session.edit(Edit("brush", (float(cols.mean()), float(rows.mean())), radius=5))
    key = session.draft.mask.copy()
    session.accept()
    written = session.propagate()
    with VolumeSession(SamiaPredictor(build_model("tiny_sam2")), volume, session.preset) as reference:
        prompt = VolumePrompt(key_slices=(KeySlice(4, mask=key),))
        expected = segment_volume_with_memory(reference, [prompt]).objects[0].mask
    assert written == [i for i in range(8) if i != 4 and expected[i].any()] and written
    for index in written:
        np.testing.assert_array_equal(session.labels[index] == 1, expected[index])
