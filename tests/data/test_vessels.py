"""The vessel-tree phantom: seeded, inside the image, narrowing by Murray's law, drawn darker;
and the closing that removes a photograph's own thin dark lines."""

import numpy as np
from scipy import ndimage
from skimage import morphology

from samia.data.vessels import TreeShape, draw_vessels, remove_dark_lines, vessel_tree_mask


def _tree(seed: int, tree: TreeShape | None = None) -> np.ndarray:
    return vessel_tree_mask((128, 128), np.random.default_rng(seed), (120.0, 64.0), 90.0, tree or TreeShape())


def test_the_tree_is_seeded_connected_and_branches():
    first, again, other = _tree(3), _tree(3), _tree(4)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert ndimage.label(first)[1] == 1  # one tree: every branch starts on its parent
    skeleton = morphology.skeletonize(first)
    neighbours = ndimage.convolve(skeleton.astype(int), np.ones((3, 3), int), mode="constant") - 1
    assert np.count_nonzero(skeleton & (neighbours >= 3)) >= 2  # bifurcations


def test_branches_narrow_by_the_width_ratio_and_stop_at_the_minimum_width():
    trunk_only = _tree(5, TreeShape(max_depth=0, root_width=6.0, wander=0.0))
    # a straight trunk of width 6 going up: disks of radius 3 about integer centres hold the
    # pixels strictly inside (skimage.draw.disk) -> 5 pixels across every row
    widths = trunk_only.sum(axis=1)
    assert set(widths[widths > 0].tolist()) == {5}
    narrow = TreeShape(root_width=4.0, width_ratio=0.5, min_width=1.0)  # 4 -> 2 -> 1 -> stop
    assert np.array_equal(_tree(6, narrow), _tree(6, TreeShape(root_width=4.0, width_ratio=0.5, max_depth=2)))
    distance = ndimage.distance_transform_edt(_tree(6))
    assert distance.max() <= 3.0  # half the trunk's width of 4, plus where branches overlap at a fork


def test_drawing_darkens_the_tree_by_the_contrast_and_leaves_the_rest():
    background = np.full((64, 64), 200, np.uint8)
    mask = np.zeros((64, 64), bool)
    mask[:, 30:34] = True
    image = draw_vessels(background, mask, contrast=0.3)
    assert image.dtype == np.uint8
    assert abs(int(image[32, 31]) - 200 * 0.7) <= 10  # the centre, softened by the blur
    assert (image[:, :25] == 200).all() and (image[:, 40:] == 200).all()


def test_remove_dark_lines_fills_thin_lines_and_keeps_wide_regions():
    gray = np.full((80, 80), 180, np.uint8)
    gray[:, 20:23] = 60  # a 3 px dark line, like a fundus vessel
    gray[40:80, 45:80] = 60  # a wide dark region, like the background outside the disc
    cleaned = remove_dark_lines(gray, radius=4)
    assert (cleaned[:, 20:23] == 180).all()
    assert (cleaned[50:70, 55:75] == 60).all()
