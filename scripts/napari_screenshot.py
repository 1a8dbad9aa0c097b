"""napari talking to ``samia serve``, headless: the napari-nninteractive plugin in remote mode, a box
on slice 12 of the bundled Colin27 MRI around the left cerebellum, and a screenshot of the window.

Run under a virtual display (needs ``pip install napari pyqt5 napari-nninteractive`` and Debian's
``xvfb``), with a ``samia serve`` running::

    xvfb-run -a -s "-screen 0 1600x1000x24" python scripts/napari_screenshot.py \
        http://127.0.0.1:1527 docs/images/napari-samia.png --labels labels.npy

It drives the plugin's own widget as a user's clicks do (server URL, Initialize, the BBox tool, a
rectangle drawn on the image) and writes the screenshot and, with ``--labels``, the plugin's label
layer as a ``.npy`` file. The guide's screenshot is made this way; a test runs it too.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import napari
import numpy as np
from qtpy.QtWidgets import QApplication

from samia.data.samples import sample_dataset_path
from samia.io import read_image

KEY_SLICE = 12
BOX = (68, 60, 125, 117)  # x0, y0, x1, y1 on the key slice: the left cerebellum where it is largest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the URL samia serve printed")
    parser.add_argument("screenshot", type=Path, help="PNG to write")
    parser.add_argument("--labels", type=Path, help="also write the plugin's label layer here (.npy)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for the server")
    args = parser.parse_args()

    volume = read_image(sample_dataset_path("colin27_aal_3d") / "imagesTr" / "colin27.nii.gz")
    viewer = napari.Viewer(title="napari + samia serve", show=False)
    viewer.window.resize(1500, 900)
    viewer.add_image(volume.array.astype(np.float32), scale=volume.spacing, name="colin27")
    _, widget = viewer.window.add_plugin_dock_widget("napari-nninteractive", "nnInteractive")
    app = QApplication.instance()

    def wait(done: Callable[[], bool], what: str) -> None:
        end = time.monotonic() + args.timeout
        while not done():
            app.processEvents()
            time.sleep(0.05)
            if time.monotonic() > end:
                raise SystemExit(f"napari_screenshot: no {what} within {args.timeout:g} s")

    # Remote mode (the only one without nnInteractive's local model), the server URL, Initialize
    widget.server_url_edit.setText(args.url)
    widget.on_init()
    wait(lambda: widget.label_layer_name in viewer.layers, "session (claim)")
    wait(lambda: widget._upload_dialog is None, "image upload")  # its popup closes when set_image is done

    # the BBox tool, and a rectangle drawn on the key slice as the mouse draws it
    widget.interaction_button._check(1)
    widget.on_interaction_selected()
    x0, y0, x1, y1 = BOX
    corners = [[KEY_SLICE, y0, x0], [KEY_SLICE, y0, x1 + 1], [KEY_SLICE, y1 + 1, x1 + 1], [KEY_SLICE, y1 + 1, x0]]
    viewer.layers[widget.bbox_layer_name].add(np.array(corners, dtype=float), shape_type="rectangle")
    labels = viewer.layers[widget.label_layer_name]
    wait(lambda: bool(np.asarray(labels.data).any()), "segmentation")

    viewer.dims.set_point(0, KEY_SLICE * volume.spacing[0])
    viewer.reset_view()
    app.processEvents()
    viewer.screenshot(path=str(args.screenshot), canvas_only=False, flash=False)
    if args.labels is not None:
        np.save(args.labels, np.asarray(labels.data))
    print(f"{int((np.asarray(labels.data) > 0).sum())} voxels; screenshot {args.screenshot}")
    widget._release_session()
    viewer.close()


if __name__ == "__main__":
    main()
