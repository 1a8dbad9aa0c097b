"""A viewer's 3D interactions become samia volume-engine prompts on one slicing axis; the session
answers exactly what the engine gives for those prompts, corrects, undoes and resets."""

from __future__ import annotations

import numpy as np
import pytest

from samia.errors import ConfigurationError
from samia.models import build_model
from samia.predictor import SamiaPredictor
from samia.serve.viewer import SCRIBBLE_POINTS, SCRIBBLE_SPACING, ViewerSession, scribble_points
from samia.transforms import preset_for
from samia.types import Prompt, Volume
from samia.volume import KeySlice, VolumePrompt, VolumeSession, segment_volume


@pytest.fixture(scope="module")
def model():
    return build_model("tiny_sam", backend="torch")


def _image(shape: tuple[int, int, int] = (12, 40, 48)) -> np.ndarray:
    grid = np.indices(shape).astype(np.float32)
    centre = np.array(shape, dtype=np.float32)[:, None, None, None] / 2
    inside = (((grid - centre) / (np.array(shape)[:, None, None, None] / 3)) ** 2).sum(axis=0) < 1
    return (inside * 200 + np.random.default_rng(0).normal(0, 5, shape)).astype(np.float32)


def _engine(model, image: np.ndarray, axis: int, prompt: VolumePrompt) -> np.ndarray:
    volume = Volume(image)
    with VolumeSession(SamiaPredictor(model), volume, preset_for(volume), axis=axis) as session:
        return segment_volume(session, [prompt]).objects[0].mask


def test_a_box_segments_along_the_axis_it_was_drawn_on(model) -> None:
    image = _image()
    viewer = ViewerSession(SamiaPredictor(model), image, spacing=None)
    change = viewer.add_box([[2, 10], [20, 21], [10, 40]], positive=True)  # one voxel thick along axis 1
    assert viewer.axis == 1 and change.axis == 1
    expected = _engine(model, image, 1, VolumePrompt(key_slices=(KeySlice(20, Prompt(box=np.array([10, 2, 39, 9]))),)))
    assert np.array_equal(viewer.mask, expected)
    changed = np.argwhere(expected)
    if changed.size:
        assert change.bbox == [[int(changed[:, a].min()), int(changed[:, a].max()) + 1] for a in range(3)]
    with pytest.raises(ConfigurationError, match="along axis 1"):
        viewer.add_box([[5, 6], [0, 30], [0, 30]], positive=True)


def test_napari_and_slicer_layouts_slice_along_the_largest_spacing(model) -> None:
    napari = _image()  # (z, y, x)
    slicer = napari.transpose(2, 1, 0).copy()  # (x, y, z), as Slicer's arrays come
    first = ViewerSession(SamiaPredictor(model), napari, spacing=(3.0, 1.0, 1.0))
    second = ViewerSession(SamiaPredictor(model), slicer, spacing=(1.0, 1.0, 3.0))
    first.add_point((6, 20, 24), positive=True)  # no box yet: the axis of largest spacing
    second.add_point((24, 20, 6), positive=True)
    assert (first.axis, second.axis) == (0, 2)
    click = Prompt(points=np.array([[24.0, 20.0]]), labels=np.array([1]))  # (x, y): the later axis is x
    assert np.array_equal(first.mask, _engine(model, napari, 0, VolumePrompt(key_slices=(KeySlice(6, click),))))
    click = Prompt(points=np.array([[20.0, 24.0]]), labels=np.array([1]))  # Slicer's planes are (x, y) arrays
    assert np.array_equal(second.mask, _engine(model, slicer, 2, VolumePrompt(key_slices=(KeySlice(6, click),))))


def test_without_spacing_a_point_only_object_uses_the_first_axis(model) -> None:
    viewer = ViewerSession(SamiaPredictor(model), _image(), spacing=None)
    viewer.add_point((6, 20, 24), positive=True)
    assert viewer.axis == 0


def test_a_second_interaction_is_a_correction_with_the_first_key_settled(model) -> None:
    image = _image()
    viewer = ViewerSession(SamiaPredictor(model), image, spacing=(3.0, 1.0, 1.0))
    viewer.add_box([[6, 7], [10, 30], [12, 36]], positive=True)
    before = viewer.mask.copy()
    viewer.add_point((3, 20, 24), positive=True)
    first = KeySlice(6, Prompt(box=np.array([12.0, 10.0, 35.0, 29.0])), settled=True)
    second = KeySlice(3, Prompt(points=np.array([[24.0, 20.0]]), labels=np.array([1])))
    current = before if before.any() else None
    expected = _engine(model, image, 0, VolumePrompt(key_slices=(second, first), current=current))
    assert np.array_equal(viewer.mask, expected)
    assert viewer.undo() is not None and np.array_equal(viewer.mask, before)
    assert viewer.undo() is not None and not viewer.mask.any()
    assert viewer.undo() is None


def test_prompts_sent_together_are_one_interaction_and_a_3d_region_bounds_propagation(model) -> None:
    image = _image()
    viewer = ViewerSession(SamiaPredictor(model), image, spacing=None)
    change = viewer.add_prompts(points=[((6, 20, 24), True), ((6, 5, 5), False)], region=[[3, 9], [10, 30], [12, 36]])
    assert viewer.axis == 0 and change.finished
    box = KeySlice(5, Prompt(box=np.array([12.0, 10.0, 35.0, 29.0])))  # the region's middle slice
    clicks = KeySlice(6, Prompt(points=np.array([[24.0, 20.0], [5.0, 5.0]]), labels=np.array([1, 0])))
    expected = _engine(model, image, 0, VolumePrompt(key_slices=(box, clicks), bounds=(3, 8)))
    assert np.array_equal(viewer.mask, expected)
    assert not viewer.mask[:3].any() and not viewer.mask[9:].any()
    with pytest.raises(ConfigurationError, match="no prompt"):
        viewer.add_prompts()


def test_past_the_reply_deadline_an_interaction_answers_its_key_slice_and_finishes_later(model) -> None:
    image = _image()
    prompt = VolumePrompt(key_slices=(KeySlice(6, Prompt(box=np.array([12.0, 10.0, 35.0, 29.0]))),))
    expected = _engine(model, image, 0, prompt)
    assert expected[6].any() and expected[:6].any(), "the test needs an object that propagates"
    viewer = ViewerSession(SamiaPredictor(model), image, spacing=None, reply_seconds=0.0)
    change = viewer.add_box([[6, 7], [10, 30], [12, 36]], positive=True)
    assert not change.finished and not viewer.finished
    assert np.array_equal(viewer.mask[6], expected[6])  # the key slice is always answered
    assert not np.delete(viewer.mask, 6, axis=0).any()
    viewer.reply_seconds = 600.0
    finished = viewer.finish()
    assert finished is not None and finished.finished and np.array_equal(viewer.mask, expected)
    assert viewer.finish() is None  # nothing left to finish


def test_a_2d_image_is_segmented_on_its_one_slice_whatever_the_spacing(model) -> None:
    viewer = ViewerSession(SamiaPredictor(model), _image((1, 40, 48)), spacing=(0.5, 2.0, 1.0))
    viewer.add_point((0, 20, 24), positive=True)
    assert viewer.axis == 0


def test_a_negative_box_erases_the_object_inside_it_on_its_slice(model) -> None:
    viewer = ViewerSession(SamiaPredictor(model), _image(), spacing=None)
    viewer.set_initial(np.ones((12, 40, 48), dtype=np.uint8))
    viewer.add_box([[6, 7], [0, 20], [0, 48]], positive=False)
    assert not viewer.mask[6, :20].any() and viewer.mask[6, 20:].all()
    viewer.reset()
    assert not viewer.mask.any() and viewer.axis is None and viewer.undo() is None


def test_a_scribble_becomes_spaced_clicks_on_it() -> None:
    plane = np.zeros((60, 80), dtype=bool)
    plane[30, 5:75] = True
    plane[10:50, 40] = True
    clicks = scribble_points(plane)
    assert 2 <= len(clicks) <= SCRIBBLE_POINTS
    assert all(plane[y, x] for x, y in clicks)
    distances = [np.hypot(a[0] - b[0], a[1] - b[1]) for i, a in enumerate(clicks) for b in clicks[i + 1 :]]
    assert min(distances) >= SCRIBBLE_SPACING


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda v: v.add_box([[0, 12], [0, 40], [0, 48]], True), "is 3D"),
        (lambda v: v.add_box([[0, 1], [50, 60], [0, 10]], True), "empty inside the image"),
        (lambda v: v.add_point((0, 99, 0), True), "outside the image"),
        (lambda v: v.add_lasso(np.zeros((12, 40, 48), np.uint8), True), "is empty"),
        (lambda v: v.add_scribble(np.ones((12, 40, 48), np.uint8), True), "spans several slices"),
        (lambda v: v.set_initial(np.ones((2, 2, 2), np.uint8)), "initial segmentation of shape"),
    ],
    ids=["3d-box", "empty-box", "point-outside", "empty-lasso", "thick-scribble", "wrong-shape"],
)
def test_interactions_that_cannot_be_placed_are_refused_in_one_line(model, call, message: str) -> None:
    viewer = ViewerSession(SamiaPredictor(model), _image(), spacing=None)
    with pytest.raises(ConfigurationError, match=message):
        call(viewer)


def test_a_sam_2_model_tracks_with_its_memory_and_corrections_run_again_from_every_key() -> None:
    pytest.importorskip("sam2", reason="samia[sam2] is not installed")
    from samia.volume.memory import segment_volume_with_memory

    sam2 = build_model("tiny_sam2")
    image = _image()
    viewer = ViewerSession(SamiaPredictor(sam2), image, spacing=(3.0, 1.0, 1.0))
    viewer.add_box([[6, 7], [10, 30], [12, 36]], positive=True)
    viewer.add_point((3, 20, 24), positive=True)
    keys = (
        KeySlice(3, Prompt(points=np.array([[24.0, 20.0]]), labels=np.array([1]))),
        KeySlice(6, Prompt(box=np.array([12.0, 10.0, 35.0, 29.0]))),
    )
    volume = Volume(image)
    with VolumeSession(SamiaPredictor(sam2), volume, preset_for(volume)) as session:
        expected = segment_volume_with_memory(session, [VolumePrompt(key_slices=keys)]).objects[0].mask
    assert expected.any() and np.array_equal(viewer.mask, expected)
