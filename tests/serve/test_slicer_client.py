"""The older nnInteractive Slicer server API under ``/slicer``, driven by requests built and replies
decoded exactly as SlicerNNInteractive's ``requests``-based plugin did (transcribed from its
``upload_image_to_server``, ``bbox_prompt``, ``point_prompt``, ``lasso_or_scribble_prompt`` and
``unpack_binary_segmentation``), against a real ``samia serve`` with the real LiteMedSAM."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pytest
import requests
from requests_toolbelt import MultipartEncoder
from serve_process import Served, engine

from samia.data.samples import sample_dataset_path
from samia.io.volume import read_volume
from samia.models import build_model
from samia.types import Prompt
from samia.volume import KeySlice, VolumePrompt

pytestmark = pytest.mark.real_weights

KEY_SLICE, BOX = 12, (68, 60, 125, 117)  # the left cerebellum where it is largest (x0, y0, x1, y1)


class SlicerPlugin:
    """The plugin's requests, transcribed; ``image`` is its ``arrayFromVolume`` (k, j, i) array."""

    def __init__(self, server: str, image: np.ndarray) -> None:
        self.server, self.image = server, image

    def upload_image(self) -> requests.Response:
        buffer = io.BytesIO()
        np.save(buffer, self.image)
        encoder = MultipartEncoder(fields={"file": ("volume.npy", buffer.getvalue(), "application/octet-stream")})
        return requests.post(
            f"{self.server}/upload_image", data=encoder, headers={"Content-Type": encoder.content_type}
        )

    def bbox_prompt(self, outer_point_one: list[int], outer_point_two: list[int], positive_click: bool) -> np.ndarray:
        response = requests.post(
            f"{self.server}/add_bbox_interaction",
            json={
                "outer_point_one": outer_point_one[::-1],
                "outer_point_two": outer_point_two[::-1],
                "positive_click": positive_click,
            },
        )
        return self.unpack_binary_segmentation(response)

    def point_prompt(self, xyz: list[int], positive_click: bool) -> np.ndarray:
        response = requests.post(
            f"{self.server}/add_point_interaction", json={"voxel_coord": xyz[::-1], "positive_click": positive_click}
        )
        return self.unpack_binary_segmentation(response)

    def lasso_prompt(self, mask: np.ndarray, positive_click: bool) -> np.ndarray:
        buffer = io.BytesIO()
        np.save(buffer, mask)
        fields = {
            "file": ("volume.npy.gz", gzip.compress(buffer.getvalue()), "application/octet-stream"),
            "positive_click": str(positive_click),
        }
        encoder = MultipartEncoder(fields=fields)
        response = requests.post(
            f"{self.server}/add_lasso_interaction",
            data=encoder,
            headers={"Content-Type": encoder.content_type, "Content-Encoding": "gzip"},
        )
        return self.unpack_binary_segmentation(response)

    def unpack_binary_segmentation(self, response: requests.Response) -> np.ndarray:
        assert response.status_code == 200, response.text
        assert "application/json" not in response.headers.get("Content-Type", ""), response.text
        total = np.prod(self.image.shape)
        bits = np.unpackbits(np.frombuffer(response.content, dtype=np.uint8))[:total]
        return bits.reshape(self.image.shape).astype(np.bool_).astype(np.uint8)


@pytest.fixture(scope="module")
def served():
    server = Served()
    yield server
    server.stop()


def test_the_plugin_gets_the_engines_mask_for_a_box_and_a_lasso(served) -> None:
    volume = read_volume(sample_dataset_path("colin27_aal_3d") / "imagesTr" / "colin27.nii.gz")
    image = volume.array.astype(np.float32)
    model = build_model("litemedsam", backend="auto")
    plugin = SlicerPlugin(f"{served.url}/slicer", image)

    before = requests.post(
        f"{plugin.server}/add_point_interaction", json={"voxel_coord": [1, 2, 3], "positive_click": True}
    )
    assert before.json() == {"status": "error", "message": "No image uploaded"}  # the plugin's cue to upload
    assert plugin.upload_image().json() == {"status": "ok"}

    x0, y0, x1, y1 = BOX
    mask = plugin.bbox_prompt([x0, y0, KEY_SLICE], [x1, y1, KEY_SLICE], positive_click=True)  # IJK corners
    box = Prompt(box=np.array(BOX, dtype=np.float64))
    expected, _ = engine(model, image, 0, VolumePrompt(key_slices=(KeySlice(KEY_SLICE, box),)))
    assert mask.any() and np.array_equal(mask.astype(bool), expected)

    lasso = np.zeros(image.shape, dtype=np.uint8)
    lasso[KEY_SLICE - 3, y0 - 2 : y1 + 3, x0 - 2 : x1 + 3] = 1
    after = plugin.lasso_prompt(lasso, positive_click=True)
    assert after[KEY_SLICE - 3].any() and np.array_equal(after[KEY_SLICE], mask[KEY_SLICE])
    served.wait_for(lambda: any(" lasso session=" in line for line in served.lines), "lasso")
