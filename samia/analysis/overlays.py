"""Pictures of single results: the image as the model saw it, the ground truth, the prediction, the prompt.

:func:`extreme_cases` picks the best and worst rows of every model and strategy;
:func:`load_case_view` re-reads what one row was computed from (source image and label, the row's
own mask: ``mask_rle``, else the file of ``--save-masks``; the prompt JSON); :func:`overlay_figure`
draws it, cropped around the object: ground truth as a yellow outline, prediction filled cyan, positive points green, negative
points red, the box dashed orange. :func:`segmentation_figure` draws the objects of one
``samia segment`` call on the whole image, without a ground truth.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from samia.analysis.results import prompt_key
from samia.data import extract_objects
from samia.errors import InputError, InvalidImageError
from samia.evaluation.config import read_config
from samia.io import read_image, read_image_slice, read_label
from samia.io.mask_runs import decode_mask
from samia.transforms import get_preset, to_rgb_uint8
from samia.types import Image2D, Prompt

GROUND_TRUTH_COLOUR = "#ffd700"
PREDICTION_COLOUR = "#00e5ff"
POSITIVE_COLOUR = "#00c853"
NEGATIVE_COLOUR = "#ff1744"
BOX_COLOUR = "#ff9100"
CROP_MARGIN = 0.25
MIN_CROP_MARGIN_PX = 16


@dataclass(frozen=True, eq=False)
class CaseView:
    """What one result row was computed from.

    Attributes:
        rgb: ``(H, W, 3)`` uint8, the image as the model saw it (the row's intensity preset).
        ground_truth: ``(H, W)`` bool, the object.
        prediction: ``(H, W)`` bool, the scored mask; None for a row of a samia that kept no masks.
        prompt: the prompt, pixel coordinates of the image.
    """

    rgb: np.ndarray
    ground_truth: np.ndarray
    prediction: np.ndarray | None
    prompt: Prompt


def extreme_cases(results: pd.DataFrame, n: int) -> pd.DataFrame:
    """The ``n`` rows with the highest and the ``n`` with the lowest Dice of every model and strategy.

    Rows with NaN Dice are not candidates; ties are broken by the prompt key, so the choice is
    deterministic. Adds a column ``extreme`` (``best`` / ``worst``).
    """
    rows = results.dropna(subset=["dice"])
    tie_break = ["dice", *prompt_key(rows)]
    picked = []
    for _, group in rows.groupby(["model_id", "strategy"], sort=False):
        ranked = group.sort_values(tie_break, kind="stable")
        picked.append(ranked.iloc[::-1].head(n).assign(extreme="best"))
        picked.append(ranked.head(n).assign(extreme="worst"))
    return pd.concat(picked, ignore_index=True) if picked else rows.assign(extreme=[])


@lru_cache(maxsize=64)
def _slicing_axis(results_dir: str) -> int:
    """The ``--axis`` of the run in ``results_dir`` (0 when its ``config.yaml`` is missing)."""
    path = Path(results_dir) / "config.yaml"
    return read_config(path).reading.axis if path.is_file() else 0


def _plane(path: str, slice_index: int, axis: int, label: bool = False) -> Image2D:
    """The 2D image of a row: the file itself for a 2D case, else only its slice (read alone)."""
    if slice_index < 0:
        image = read_label(path) if label else read_image(path)
        if isinstance(image, Image2D):
            return image
        raise InputError(path, "is a volume, but the row is of a 2D image (changed since the run?)")
    try:
        return read_image_slice(path, slice_index, axis)
    except InvalidImageError as error:
        raise InputError(
            path, f"has no slice {slice_index} along axis {axis} (changed since the run?): {error}"
        ) from None


def load_case_view(row: pd.Series) -> CaseView:
    """Re-read the image, object, saved prediction and prompt of one result row.

    Raises:
        InputError: (subclasses) a source file or the saved mask is missing or unreadable.
    """
    axis = _slicing_axis(row["results_dir"])
    image = _plane(row["image_path"], int(row["slice"]), axis)
    labels = _plane(row["label_path"], int(row["slice"]), axis, label=True).array
    if int(row["component"]) < 0:
        ground_truth = labels == int(row["label"])
    else:
        objects, _ = extract_objects(labels, min_area=0, connected_components=True)
        found = [o.mask for o in objects if o.label == int(row["label"]) and o.component == int(row["component"])]
        if not found:
            raise InputError(
                row["label_path"],
                f"has no component {row['component']} of label {row['label']} (changed since the run?)",
            )
        ground_truth = found[0]
    prediction = None
    if isinstance(row.get("mask_rle"), str) and row["mask_rle"]:
        prediction = decode_mask(row["mask_rle"])
    elif isinstance(row.get("mask_path"), str) and row["mask_path"]:
        prediction = read_label(Path(row["results_dir"]) / row["mask_path"]).array > 0
    if prediction is not None and prediction.shape != ground_truth.shape:
        raise InputError(
            row["image_path"], f"is {ground_truth.shape}, its row's mask {prediction.shape} (changed since the run?)"
        )
    rgb = to_rgb_uint8(image, get_preset(row["preset"]))
    return CaseView(rgb, ground_truth, prediction, Prompt.from_record(json.loads(row["prompt"])))


def _crop(view: CaseView) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)`` inclusive, around the object, the prediction and the prompt, with a margin."""
    masks = view.ground_truth | (view.prediction if view.prediction is not None else False)
    rows, columns = np.nonzero(masks)
    xs, ys = columns.tolist(), rows.tolist()
    if view.prompt.points is not None:
        xs += view.prompt.points[:, 0].tolist()
        ys += view.prompt.points[:, 1].tolist()
    if view.prompt.box is not None:
        xs += view.prompt.box[[0, 2]].tolist()
        ys += view.prompt.box[[1, 3]].tolist()
    height, width = view.ground_truth.shape
    margin = max(MIN_CROP_MARGIN_PX, int(CROP_MARGIN * max(max(ys) - min(ys), max(xs) - min(xs))))
    return (
        max(int(min(ys)) - margin, 0),
        min(int(max(ys)) + margin, height - 1),
        max(int(min(xs)) - margin, 0),
        min(int(max(xs)) + margin, width - 1),
    )


def overlay_figure(view: CaseView, title: str) -> Figure:
    """One panel: the cropped image with ground truth, prediction and prompt drawn (see module)."""
    y0, y1, x0, x1 = _crop(view)
    figure = Figure(figsize=(3.3, 3.5), layout="constrained")
    axes = figure.subplots()
    extent = (x0 - 0.5, x1 + 0.5, y1 + 0.5, y0 - 0.5)
    axes.imshow(view.rgb[y0 : y1 + 1, x0 : x1 + 1], extent=extent, interpolation="nearest")
    xs, ys = np.arange(x0, x1 + 1), np.arange(y0, y1 + 1)
    if view.prediction is not None:
        prediction = view.prediction[y0 : y1 + 1, x0 : x1 + 1]
        fill = np.zeros((*prediction.shape, 4))
        fill[prediction] = (0.0, 0.9, 1.0, 0.35)
        axes.imshow(fill, extent=extent, interpolation="nearest")
        if prediction.any():
            axes.contour(xs, ys, prediction.astype(float), levels=[0.5], colors=PREDICTION_COLOUR, linewidths=1.0)
    axes.contour(
        xs,
        ys,
        view.ground_truth[y0 : y1 + 1, x0 : x1 + 1].astype(float),
        levels=[0.5],
        colors=GROUND_TRUTH_COLOUR,
        linewidths=1.5,
    )
    _draw_prompt(axes, view.prompt)
    axes.set_xlim(x0 - 0.5, x1 + 0.5)
    axes.set_ylim(y1 + 0.5, y0 - 0.5)
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title(title, fontsize=8)
    return figure


def _draw_prompt(axes: Axes, prompt: Prompt, box_colour: str | tuple[float, ...] = BOX_COLOUR) -> None:
    """The prompt's box (dashed) and points (green positive, red negative) on ``axes``, in pixels."""
    if prompt.box is not None:
        bx0, by0, bx1, by1 = prompt.box
        axes.add_patch(
            Rectangle(
                (bx0 - 0.5, by0 - 0.5),
                bx1 - bx0 + 1,
                by1 - by0 + 1,
                fill=False,
                edgecolor=box_colour,
                linestyle="--",
                linewidth=1.5,
            )
        )
    if prompt.points is not None:
        for label, marker_colour in ((1, POSITIVE_COLOUR), (0, NEGATIVE_COLOUR)):
            chosen = prompt.points[prompt.labels == label]
            axes.scatter(
                chosen[:, 0], chosen[:, 1], s=45, color=marker_colour, edgecolors="white", linewidths=1.0, zorder=3
            )


def segmentation_figure(rgb: np.ndarray, masks: list[np.ndarray], prompts: list[Prompt], title: str = "") -> Figure:
    """The whole image with each object's mask filled and outlined in its own colour, and its prompt.

    No ground truth is needed (``samia segment --overlay``).

    Args:
        rgb: ``(H, W, 3)`` uint8, the image as the model saw it.
        masks: one ``(H, W)`` bool mask per object (object ``k`` is label ``k + 1``).
        prompts: one prompt per object, image pixels.
        title: drawn above the image.
    """
    from matplotlib import colormaps

    height, width = rgb.shape[:2]
    figure = Figure(figsize=(6.0, 6.0 * height / width + 0.4), layout="constrained")
    axes = figure.subplots()
    axes.imshow(rgb, interpolation="nearest")
    colours = colormaps["tab10"]
    xs, ys = np.arange(width), np.arange(height)
    for index, (mask, prompt) in enumerate(zip(masks, prompts)):
        colour = colours(index % 10)
        fill = np.zeros((height, width, 4))
        fill[mask] = (*colour[:3], 0.35)
        axes.imshow(fill, interpolation="nearest")
        if mask.any():
            axes.contour(xs, ys, mask.astype(float), levels=[0.5], colors=[colour], linewidths=1.2)
        _draw_prompt(axes, prompt, box_colour=colour)
    axes.set_xticks([])
    axes.set_yticks([])
    axes.set_title(title, fontsize=9)
    return figure


def case_title(row: pd.Series, has_prediction: bool) -> str:
    """Two lines naming the row: object and case; model, strategy, selection and Dice."""
    where = f"{row['case']}" + (f" slice {int(row['slice'])}" if int(row["slice"]) >= 0 else "")
    what = f"{row['model_id']} · {row['strategy']} · {row['selection']} · Dice {row['dice']:.3f}"
    return f"{row['object']} — {where}\n{what}" + (
        "" if has_prediction else "\n(prediction not kept by this run's samia)"
    )
