"""The annotation study of an annotation folder: per object, how long it took, how many interactions
it needed, and (with ground truth) how good the accepted mask is.

Huang et al. (MedIA 2024) timed annotators drawing the same objects by hand and with SAM; this
measures the same from the log (:mod:`samia.annotate.log`) of any annotation folder.

Active time of an object = the sum of the gaps between consecutive events of its case that end in
one of the object's events, each gap counted up to :data:`IDLE_SECONDS` (longer, the annotator was
away); a gap that ends in an ``open`` (a new page, a restarted server) is not counted.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from samia.annotate.log import LOG_NAME, STUDY_FILE, read_log
from samia.annotate.session import LABEL_FILES, read_state
from samia.errors import ConfigurationError, InputError, MissingFileError, SamiaError
from samia.io import read_label
from samia.types import Image2D, Volume

IDLE_SECONDS = 60.0
"""The longest gap between two events counted as work."""

STUDY_COLUMNS = (
    "folder", "mode", "case", "object", "name", "active_s", "clicks", "positive_clicks", "negative_clicks",
    "boxes", "strokes", "interactions", "undos", "redos", "accepts", "first_mask_accepted", "model_latency_ms",
    "pixels", "dice", "nsd", "gt_label",
)  # fmt: skip
"""Columns of :func:`object_rows`."""

STROKE_KINDS = ("brush", "erase", "polygon")


def is_annotation_folder(folder: Path) -> bool:
    """Whether ``folder`` holds an annotation log."""
    return (Path(folder) / LOG_NAME).is_file()


def _case_events(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    streams: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        if event.get("case") is not None:
            streams.setdefault(str(event["case"]), []).append(event)
    return streams


def active_seconds(stream: list[dict[str, Any]]) -> dict[int, float]:
    """Object label -> active seconds in one case's events (rule: module docstring)."""
    spent: dict[int, float] = {}
    for previous, event in zip(stream, stream[1:]):
        label = int(event.get("object") or 0)
        if event.get("kind") == "open" or label == 0:
            continue
        gap = max(0.0, float(event["time"]) - float(previous["time"]))
        spent[label] = spent.get(label, 0.0) + min(gap, IDLE_SECONDS)
    return spent


def _ground_truth(folder: Path) -> dict[str, tuple[Path, dict[int, str]]]:
    """Case name -> (ground-truth label file, label names), from the data folder the study file names."""
    from samia.annotate.cases import find_cases

    try:
        data = Path(json.loads((folder / STUDY_FILE).read_text())["data"])
        cases, _ = find_cases(data)
    except (OSError, ValueError, KeyError, TypeError, SamiaError):
        return {}
    return {c.name: (c.ground_truth, c.label_names) for c in cases if c.ground_truth is not None}


def case_labels(folder: Path, case: str) -> tuple[np.ndarray | None, dict[int, str]]:
    """The case's accepted label map (None before any accept) and its object names."""
    try:
        saved = read_state(folder / case)
    except ConfigurationError:
        saved = None
    names = saved.names if saved is not None else {}
    for name in LABEL_FILES:
        if (folder / case / name).is_file():
            return np.asarray(read_label(folder / case / name).array), names
    return None, names


NO_QUALITY = {"dice": math.nan, "nsd": math.nan, "gt_label": None}


def _quality(
    labels: np.ndarray, label: int, name: str, truth: Image2D | Volume, names: dict[int, str]
) -> dict[str, Any]:
    """Dice and NSD of object ``label`` (called ``name``) against the ground-truth label map ``truth``."""
    from samia.metrics.summary import segmentation_metrics

    value = {v: k for k, v in names.items()}.get(name, label)
    gt = np.asarray(truth.array) == value
    if gt.shape != labels.shape:
        raise InputError(
            truth.path or "ground truth", f"ground truth of shape {gt.shape}; the annotation is {labels.shape}"
        )
    metrics = segmentation_metrics(labels == label, gt, truth.spacing)
    return {"dice": metrics["dice"], "nsd": metrics["nsd"], "gt_label": int(value)}


def _interaction_columns(events: list[dict[str, Any]]) -> dict[str, Any]:
    """What the annotator did to one object (its logged ``events``): the mode, clicks, boxes,
    strokes, undos, accepts, whether the first answer was accepted as it was, and the model's median
    latency in ms."""
    kinds = [e["kind"] for e in events]
    accepts = [e for e in events if e["kind"] == "accept"]
    mode = next((e.get("mode") for e in events if e.get("mode")), "assisted")
    points = [e for e in events if e["kind"] == "point"]
    positive = sum(bool((e.get("details") or {}).get("positive", True)) for e in points)
    latencies = [float(e["latency_ms"]) for e in events if e["kind"] in ("point", "box") and "latency_ms" in e]
    strokes = sum(kinds.count(kind) for kind in STROKE_KINDS)
    return {
        "mode": mode,
        "clicks": len(points),
        "positive_clicks": positive,
        "negative_clicks": len(points) - positive,
        "boxes": kinds.count("box"),
        "strokes": strokes,
        "interactions": len(points) + kinds.count("box") + strokes,
        "undos": kinds.count("undo"),
        "redos": kinds.count("redo"),
        "accepts": len(accepts),
        "first_mask_accepted": (accepts[0].get("details") or {}).get("first_mask")
        if accepts and mode == "assisted"
        else None,
        "model_latency_ms": float(np.median(latencies)) if latencies else math.nan,
    }


def object_rows(folder: Path) -> pd.DataFrame:
    """One row per annotated object of ``folder`` (columns :data:`STUDY_COLUMNS`).

    ``first_mask_accepted``: whether the object's first accept took the model's first answer as it
    was (one click or box, nothing else); None in manual mode. ``dice`` / ``nsd`` (2 mm): the
    accepted mask against the dataset's ground truth (the label of the same name, else the same
    value), NaN without one.

    Raises:
        MissingFileError: no log in ``folder``.
    """
    folder = Path(folder)
    if not is_annotation_folder(folder):
        raise MissingFileError(folder / LOG_NAME, "no annotation log; is this a `samia annotate --out` folder?")
    truths = _ground_truth(folder)
    rows = []
    for case, stream in sorted(_case_events(read_log(folder)).items()):
        spent = active_seconds(stream)
        labels, names = case_labels(folder, case)
        truth = truths.get(case)
        reference = read_label(truth[0]) if truth is not None and labels is not None else None  # once a case
        objects = sorted({int(e["object"]) for e in stream if int(e.get("object") or 0) > 0})
        for label in objects:
            mine = [e for e in stream if int(e.get("object") or 0) == label]
            name = names.get(label, f"object {label}")
            quality = NO_QUALITY
            accepted = any(e["kind"] == "accept" for e in mine)
            if accepted and truth is not None and reference is not None and labels is not None:
                quality = _quality(labels, label, name, reference, truth[1])
            rows.append(
                {
                    "folder": str(folder),
                    "case": case,
                    "object": label,
                    "name": name,
                    "active_s": round(spent.get(label, 0.0), 3),
                    **_interaction_columns(mine),
                    "pixels": int((labels == label).sum()) if labels is not None else 0,
                    **quality,
                }
            )
    return pd.DataFrame(rows, columns=list(STUDY_COLUMNS))
