"""One object being drawn on one image plane: its edits, and the mask they make.

A :class:`Draft` is immutable: every interaction (a click, a box, a brush or eraser stroke) makes
a new one, so undo and redo are moves along a list of drafts. The model's part of the mask comes
from the clicks and the box, as SAM was trained to be used interactively: the first answer to a
lone click is the best of the three multimask candidates by predicted IoU, every later answer is
the single-mask output with the previous answer's low-resolution logits fed back as ``mask_input``.
Strokes (brush, eraser, filled polygon) are applied on top, in order, each time the model's part
changes; without a model they are the whole mask (the manual baseline).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from samia.predictor import SamiaPredictor
from samia.types import Prompt

EditKind = Literal["point", "box", "brush", "erase", "polygon"]
EDIT_KINDS: tuple[str, ...] = ("point", "box", "brush", "erase", "polygon")
MODEL_EDITS = ("point", "box")
STROKE_EDITS = ("brush", "erase", "polygon")


@dataclass(frozen=True)
class Edit:
    """One interaction.

    Attributes:
        kind: ``point`` (``coords`` = ``(x, y)``, ``positive``), ``box`` (``(x0, y0, x1, y1)``,
            inclusive; a new box replaces the previous one), ``brush`` / ``erase`` (a polyline
            ``(x0, y0, x1, y1, ...)`` painted or erased ``radius`` pixels around), ``polygon``
            (at least three vertices ``(x0, y0, ...)``, filled and added to the mask).
        coords: pixels of the plane, ``x`` = column.
        positive: for a point: foreground (True) or background (False).
        radius: for a stroke, pixels.
    """

    kind: EditKind
    coords: tuple[float, ...]
    positive: bool = True
    radius: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in EDIT_KINDS:
            raise ValueError(f"unknown edit {self.kind!r}; one of {', '.join(EDIT_KINDS)}")
        sizes = {"point": (2,), "box": (4,)}.get(self.kind)
        count = len(self.coords)
        least = 6 if self.kind == "polygon" else 2
        if (sizes is not None and count not in sizes) or (sizes is None and (count < least or count % 2)):
            wanted = f"{least // 2}+ x, y pairs" if sizes is None else f"{sizes[0]} numbers"
            raise ValueError(f"a {self.kind} takes {wanted}, got {count} numbers")
        if not np.isfinite(self.coords).all():
            raise ValueError(f"{self.kind} coordinates must be finite numbers, got {list(self.coords)}")
        if self.kind in ("brush", "erase") and not self.radius > 0:
            raise ValueError(f"a {self.kind} stroke needs a radius > 0, got {self.radius}")

    def to_record(self) -> dict[str, object]:
        """JSON-ready form (:meth:`from_record` reads it back)."""
        return {"kind": self.kind, "coords": list(self.coords), "positive": self.positive, "radius": self.radius}

    @classmethod
    def from_record(cls, record: dict[str, object]) -> Edit:
        coords = record["coords"]
        if not isinstance(coords, (list, tuple)):
            raise ValueError(f"an edit's coords are a list of numbers, got {coords!r}")
        return cls(
            record["kind"],  # type: ignore[arg-type]  # checked against EDIT_KINDS by __post_init__
            tuple(float(v) for v in coords),
            bool(record.get("positive", True)),
            float(record.get("radius", 0.0)),  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class Draft:
    """An object's state after some edits.

    Attributes:
        edits: every edit so far, in order.
        model_mask: ``(H, W)`` bool: the model's answer to the clicks and box (all False before any).
        logits: ``(L, L)`` float32 low-resolution logits of that answer, fed back on the next click.
        mask: ``(H, W)`` bool: ``model_mask`` with the strokes applied.
        predicted_iou: the model's estimate for its answer (nan without one).
    """

    edits: tuple[Edit, ...]
    model_mask: np.ndarray
    logits: np.ndarray | None
    mask: np.ndarray
    predicted_iou: float = float("nan")

    @classmethod
    def empty(cls, shape: tuple[int, int]) -> Draft:
        blank = np.zeros(shape, dtype=bool)
        return cls((), blank, None, blank)


def paint_stroke(mask: np.ndarray, stroke: Edit) -> np.ndarray:
    """``mask`` with the stroke's polyline painted (``brush``) or cleared (``erase``), ``radius``
    pixels around each segment (OpenCV lines with round ends), or its polygon filled (``polygon``,
    OpenCV's ``fillPoly``: interior and outline)."""
    import cv2

    canvas = np.zeros(mask.shape, dtype=np.uint8)
    xy = np.round(np.asarray(stroke.coords, dtype=np.float64).reshape(-1, 2)).astype(np.int32)
    if stroke.kind == "polygon":
        cv2.fillPoly(canvas, [xy.reshape(-1, 1, 2)], 1)
        return mask | (canvas > 0)
    thickness = max(1, int(round(2 * stroke.radius)))
    cv2.polylines(canvas, [xy.reshape(-1, 1, 2)], False, 1, thickness=thickness, lineType=cv2.LINE_8)
    for x, y in xy:  # a single-point stroke is a dot
        cv2.circle(canvas, (int(x), int(y)), max(0, int(round(stroke.radius))), 1, thickness=-1)
    touched = canvas > 0
    return (mask | touched) if stroke.kind == "brush" else (mask & ~touched)


def apply_edit(draft: Draft, edit: Edit, predictor: SamiaPredictor | None) -> Draft:
    """The draft after ``edit`` (the predictor holds the plane's embedding; None: manual mode,
    strokes only).

    Raises:
        ValueError: a click or box without a model; a point off the plane or a box that misses it.
    """
    edits = (*draft.edits, edit)
    model_mask, logits, iou = draft.model_mask, draft.logits, draft.predicted_iou
    if edit.kind in MODEL_EDITS:
        if predictor is None:
            raise ValueError("no model in this session (manual mode): use the brush, polygon and eraser")
        points = [e for e in edits if e.kind == "point"]
        boxes = [e for e in edits if e.kind == "box"]
        prompt = Prompt(
            points=np.array([p.coords for p in points], dtype=np.float64) if points else None,
            labels=np.array([int(p.positive) for p in points]) if points else None,
            box=np.array(boxes[-1].coords, dtype=np.float64) if boxes else None,
            mask_input=draft.logits,
        )
        first_lone_click = draft.logits is None and not boxes and len(points) == 1
        prediction = predictor.predict(prompt, multimask_output=first_lone_click)
        best = prediction.best_index
        model_mask, logits = prediction.masks[best], prediction.low_res_logits[best]
        iou = float(prediction.iou_predictions[best])
    mask = model_mask
    for stroke in (e for e in edits if e.kind in STROKE_EDITS):
        mask = paint_stroke(mask, stroke)
    return Draft(edits, model_mask, logits, mask, iou)
