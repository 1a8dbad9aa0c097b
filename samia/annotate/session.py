"""An annotation session on one case: objects drawn with clicks, boxes and strokes, with undo and
redo, accepted into a label map on the source grid that is autosaved after every change.

The session is pure Python (no web code) and works without a model (manual mode: brush and
eraser only). Everything it needs to resume is on disk in ``out/<case>/``:

``labels.png`` / ``labels.nii.gz``
    the accepted objects, label values on the image's own grid (NIfTI with the volume's
    geometry), written atomically after every accept;
``labels.seg.dcm``
    for a DICOM series, the same objects as a DICOM-SEG referencing the series' slices;
``model_answers.png``
    for a 2D image annotated with a model, each object's first model answer (to its first click or
    box, before any correction), label values as in ``labels.png``: what ``samia report`` scores
    against the raters (model-rater Dice);
``state.json``
    the objects (label value -> name, slices where accepted, slices filled by propagation), the object being drawn (its label,
    slice, every edit and how many of them are applied: undone edits stay for redo) and the label
    file's SHA-256 as last written; written atomically after every interaction.

Reopening replays the current object's edits on the same model, so it comes back exactly where it
was. A label file changed by someone else (its SHA-256 differs from what samia last wrote) is kept
as it is, never overwritten: a session opened on it adopts it and logs an ``external_change``; an
open session refuses to write over it (:class:`~samia.errors.LabelFileChangedError`) until the case
is opened again. Nothing drawn is dropped without being asked: starting another object, moving to
another slice or changing the window while the current object has a mask not yet accepted is
refused (:class:`DraftNotAcceptedError`) unless ``discard`` says so. Every interaction goes to the
log (:mod:`samia.annotate.log`) with the model's latency.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from samia.annotate.drafts import EDIT_KINDS, MODEL_EDITS, Draft, Edit, apply_edit
from samia.annotate.log import append_event
from samia.errors import ConfigurationError, GeometryMismatchError, InvalidLabelError, LabelFileChangedError
from samia.files import atomic_write_bytes, file_sha256, file_stamp
from samia.predictor import SamiaPredictor
from samia.transforms import IntensityPreset, gray_to_rgb, preset_for, to_rgb_uint8, volume_to_uint8
from samia.types import Image2D, Volume

STATE_FORMAT = 1
CASE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


STATE_NAME = "state.json"
LABEL_FILES = ("labels.png", "labels.nii.gz")
"""A case's label map: a 2D image's, a volume's (with its geometry)."""

MODEL_ANSWERS = "model_answers.png"
"""A 2D case's label map of each object's first model answer (module docstring)."""


class DraftNotAcceptedError(ValueError):
    """The object being drawn has a mask that was not accepted; the action would drop it."""


@dataclasses.dataclass(frozen=True)
class SavedState:
    """What a case's ``state.json`` holds (written by :class:`AnnotationSession` after every change).

    Attributes:
        names: label value -> object name; accepted / propagated: label value -> slices.
        label: the object being drawn (0: none); slice_index: the plane shown.
        edits: every edit of that object; applied: how many of them are applied (the rest undone).
        preset: the window in use (None in states written before it was saved).
        labels_sha256: the label file's SHA-256 as last written by samia.
    """

    names: dict[int, str]
    accepted: dict[int, list[int]]
    propagated: dict[int, list[int]]
    label: int
    slice_index: int
    edits: tuple[Edit, ...]
    applied: int
    preset: IntensityPreset | None
    labels_sha256: str | None


def read_state(folder: Path) -> SavedState | None:
    """The saved state of the case in ``folder``; None when it has none.

    Raises:
        ConfigurationError: ``state.json`` cannot be read or is not an annotation state.
    """
    path = Path(folder) / STATE_NAME
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text())
        current = state["current"]
        return SavedState(
            names={int(k): str(v) for k, v in state["names"].items()},
            accepted={int(k): [int(i) for i in v] for k, v in state["accepted"].items()},
            propagated={int(k): [int(i) for i in v] for k, v in state.get("propagated", {}).items()},
            label=int(current["label"]),
            slice_index=int(current["slice"]),
            edits=tuple(Edit.from_record(record) for record in current["edits"]),
            applied=int(current["applied"]),
            preset=IntensityPreset(**state["preset"]) if "preset" in state else None,
            labels_sha256=state.get("labels_sha256"),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, ConfigurationError) as error:
        raise ConfigurationError(f"{path}: not a readable annotation state ({error})") from None


def opening_view(image: Image2D | Volume, folder: Path) -> tuple[int, IntensityPreset]:
    """The slice and window a session on ``image`` opens with: those saved in ``folder``, else a
    volume's middle slice (0 for a 2D image) under the image's default preset; an unreadable state
    gives the defaults (the session itself reports it)."""
    index, preset = _default_view(image)
    try:
        saved = read_state(folder)
    except ConfigurationError:
        saved = None
    if saved is not None:
        index, preset = saved.slice_index, saved.preset or preset
    return min(max(index, 0), _depth(image) - 1), preset


def _depth(image: Image2D | Volume) -> int:
    return int(image.shape[0]) if isinstance(image, Volume) else 1


def _default_view(image: Image2D | Volume) -> tuple[int, IntensityPreset]:
    """A volume opens on its middle slice, under the image's default preset."""
    return _depth(image) // 2, preset_for(image)


def plane_rgb(gray: np.ndarray | None, image: Image2D | Volume, preset: IntensityPreset, index: int) -> np.ndarray:
    """``(H, W, 3)`` uint8: plane ``index`` as the model sees it, from a volume's ``(Z, Y, X)`` uint8
    ``gray`` (:func:`~samia.transforms.volume_to_uint8` under ``preset``), or the 2D ``image``
    under ``preset`` when ``gray`` is None."""
    return to_rgb_uint8(image, preset) if gray is None else gray_to_rgb(gray[index])  # type: ignore[arg-type]


class AnnotationSession:
    """One case being annotated.

    Args:
        image: the case, a 2D image or a volume (annotated slice by slice along axis 0).
        out: the annotation folder; the case's files go to ``out/<case_id>/``, the log to ``out``.
        case_id: the case's name: letters, digits, ``.``, ``_``, ``-`` (a file name, never a path).
        predictor: the model (any backend); None for manual annotation.
        names: label value -> object name (e.g. from ``dataset.json``); more can be added.
        preset: intensity preset (window/level); the image's default when None.
        source: the file (or DICOM series folder) the case was read from; a DICOM series folder
            makes every save write a DICOM-SEG of it too.
        clock: seconds since the epoch of each logged event (``time.time``; a scripted annotator
            passes its own).

    Raises:
        ConfigurationError: a ``case_id`` that is not a plain name.
        GeometryMismatchError / InvalidLabelError: a saved label file that does not fit the image.
    """

    def __init__(
        self,
        image: Image2D | Volume,
        out: Path,
        case_id: str,
        predictor: SamiaPredictor | None = None,
        names: dict[int, str] | None = None,
        preset: IntensityPreset | None = None,
        source: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not CASE_ID.fullmatch(case_id) or ".." in case_id:
            raise ConfigurationError(f"case id {case_id!r} is not a plain name (letters, digits, . _ -)")
        self.image, self.case_id, self.predictor, self.clock = image, case_id, predictor, clock
        self.dicom_series = source if source is not None and Path(source).is_dir() else None
        self.out = Path(out)
        self.folder = self.out / case_id
        self.folder.mkdir(parents=True, exist_ok=True)
        self.is_volume = isinstance(image, Volume)
        start, default = _default_view(image)
        self._propagated_from: dict[int, dict[int, str]] = {}  # label -> key slice -> its mask's digest
        self._set_preset(preset or default)
        self.label_path = self.folder / LABEL_FILES[int(self.is_volume)]
        self.labels = np.zeros(image.shape if self.is_volume else image.shape[:2], dtype=np.uint16)
        self.names: dict[int, str] = dict(names or {})
        self.accepted: dict[int, list[int]] = {}
        self.propagated: dict[int, list[int]] = {}
        self.slice_index = start
        self.label = 0
        self._history: list[Draft] = [Draft.empty(self.plane_shape)]
        self._position = 0
        self._plane_set: int | None = None
        self._labels_sha256: str | None = None
        self._labels_stamp: tuple[int, int, int] | None = None
        self._resume()
        self._log("open", details={"resumed_edits": self._position, "preset": self.preset.name})

    # -- what the session shows ------------------------------------------------------------

    @property
    def mode(self) -> str:
        """``assisted`` (a model answers clicks and boxes) or ``manual`` (strokes only)."""
        return "manual" if self.predictor is None else "assisted"

    @property
    def plane_shape(self) -> tuple[int, int]:
        """``(H, W)`` of the annotated plane."""
        height, width = self.labels.shape[-2:]
        return int(height), int(width)

    @property
    def depth(self) -> int:
        """Slices of a volume; 1 for a 2D image."""
        return _depth(self.image)

    @property
    def draft(self) -> Draft:
        """The object being drawn, after the applied edits."""
        return self._history[self._position]

    @property
    def can_undo(self) -> bool:
        return self._position > 0

    @property
    def can_redo(self) -> bool:
        return self._position < len(self._history) - 1

    def plane_labels(self) -> np.ndarray:
        """``(H, W)`` accepted labels of the current plane."""
        return self.labels[self.slice_index] if self.is_volume else self.labels

    def plane_rgb(self, index: int | None = None) -> np.ndarray:
        """``(H, W, 3)`` uint8: plane ``index`` (the current one) as the model sees it.

        Raises:
            ValueError: ``index`` is not a slice of the case.
        """
        index = self.slice_index if index is None else self._checked_slice(index)
        return plane_rgb(self._gray, self.image, self.preset, index)

    def _checked_slice(self, index: int) -> int:
        if not 0 <= index < self.depth:
            raise ValueError(f"slice {index} is outside the case (0..{self.depth - 1})")
        return index

    # -- interactions -------------------------------------------------------------------------

    @property
    def has_unaccepted_draft(self) -> bool:
        """The object being drawn has applied edits whose mask differs from what is accepted."""
        return self._position > 0 and not np.array_equal(self.draft.mask, self.plane_labels() == self.label)

    def go_to(self, index: int, discard: bool = False) -> None:
        """Show slice ``index`` of a volume (the object being drawn starts over on it).

        Raises:
            DraftNotAcceptedError: the current draft is not accepted and ``discard`` is False.
        """
        if self._checked_slice(index) != self.slice_index:
            self._keep_draft(discard, f"going to slice {index}")
            self.slice_index = index
            self._start(self.label)
            self._save_state()
            self._log("go_to")

    def set_preset(self, preset: IntensityPreset, discard: bool = False) -> None:
        """Show (and give the model) the image under another window/level; the object being drawn
        starts over, since the model's answers depend on the pixels it sees.

        Raises:
            DraftNotAcceptedError: the current draft is not accepted and ``discard`` is False.
        """
        if preset != self.preset:
            self._keep_draft(discard, f"changing the window to {preset.name}")
            self._set_preset(preset)
            self._start(self.label)
            self._save_state()
            self._log("preset", details={"preset": preset.name})

    def new_object(self, name: str | None = None, label: int | None = None, discard: bool = False) -> int:
        """Start drawing an object: a new label value (the next free one) or an existing one, whose
        pixels on this plane are replaced when the new draft is accepted. Returns the label value.

        Raises:
            DraftNotAcceptedError: the current draft is not accepted and ``discard`` is False.
        """
        if label is None:
            label = max([int(self.labels.max()), *self.names, *self.accepted]) + 1
        if not 1 <= label <= 65535:
            raise ValueError(f"label values are 1..65535, got {label}")
        self._keep_draft(discard, f"starting object {label}")
        self.names.setdefault(label, name or f"object {label}")
        self._start(label)
        self._save_state()
        self._log("new_object", details={"name": self.names[label]})
        return label

    def edit(self, edit: Edit, name: str | None = None) -> Draft:
        """Apply a click, box or stroke to the current object (redo history after it is dropped).
        With no object started (a case just opened), the edit starts one first, named ``name`` (or
        ``object N``), so the first click on a new case is answered like any other.

        Raises:
            ValueError: a click or box in manual mode; a point off the plane.
        """
        if self.label == 0:
            self.new_object(name)
        started = time.perf_counter()
        self._set_plane(edit)
        draft = apply_edit(self.draft, edit, self.predictor)
        latency = (time.perf_counter() - started) * 1000
        self._history = [*self._history[: self._position + 1], draft]
        self._position += 1
        self._save_state()
        self._log(edit.kind, coords=list(edit.coords), latency_ms=round(latency, 3), details=_edit_details(edit, draft))
        return draft

    def undo(self) -> Draft:
        """Step back one edit (nothing happens at the first)."""
        if self.can_undo:
            self._position -= 1
            self._save_state()
            self._log("undo")
        return self.draft

    def redo(self) -> Draft:
        """Step forward one undone edit (nothing happens without one)."""
        if self.can_redo:
            self._position += 1
            self._save_state()
            self._log("redo")
        return self.draft

    def accept(self) -> Path:
        """Put the current draft into the label map (replacing the object's pixels on this plane,
        over other objects' where they overlap) and autosave; returns the label file."""
        if self.label == 0:
            raise ValueError("start an object first (new_object)")
        self._check_label_file()
        plane = self.plane_labels()
        plane[plane == self.label] = 0
        plane[self.draft.mask] = self.label
        slices = self.accepted.setdefault(self.label, [])
        if self.slice_index not in slices:
            slices.append(self.slice_index)
            slices.sort()
        self._write_labels()
        edits = self.draft.edits
        if not self.is_volume and self.predictor is not None:
            self._write_model_answer(edits)
        counts = {kind: sum(e.kind == kind for e in edits) for kind in EDIT_KINDS}
        # SAM's first answer taken as it was: one click or box, nothing drawn over it
        unchanged = len(edits) == 1 and edits[0].kind in MODEL_EDITS
        self._log("accept", details={"pixels": int(self.draft.mask.sum()), "edits": counts, "first_mask": unchanged})
        label = self.label
        self._start(label)
        self._save_state()
        return self.label_path

    def propagate(self) -> list[int]:
        """Carry the current object through the volume with the model's engine (SAM 2's memory for
        the SAM 2 family, :func:`~samia.volume.memory.segment_volume_for_model`): its mask on this
        slice (the draft, or what was accepted here) and on every slice where it was accepted are
        key slices; the slices between and beyond are segmented from them (stopping where the
        object ends) and written into the label map, never over a slice the user accepted.

        With the slice engine, a correction re-propagates only what it changes: the object as the
        label map holds it is the engine's current mask (``VolumePrompt.current``), so each chain
        stops once it matches that mask on two consecutive slices, and slices no chain reached keep
        their masks (SAM 2 tracks again from every key slice). Slices where the object now ends are
        cleared. Autosaves; returns the slices it changed.

        Raises:
            ValueError: a 2D case, no model, or no mask of the object on this slice.
        """
        from samia.volume import KeySlice, VolumePrompt, VolumeSession
        from samia.volume.memory import segment_volume_for_model

        if not isinstance(self.image, Volume):
            raise ValueError("propagation needs a volume; this case is a 2D image")
        if self.predictor is None:
            raise ValueError("no model in this session (manual mode): nothing can propagate")
        current = self.draft.mask if self.draft.mask.any() else self.plane_labels() == self.label
        if not current.any():
            raise ValueError(f"object {self.label} has no mask on slice {self.slice_index} to propagate")
        self._check_label_file()
        user = set(self.accepted.get(self.label, []))
        keys = {index: self.labels[index] == self.label for index in user}
        keys[self.slice_index] = current
        started = time.perf_counter()
        before = self.labels == self.label
        sources = {index: _digest(mask) for index, mask in keys.items()}
        settled = self._propagated_from.get(self.label, {})
        prompt = VolumePrompt(
            key_slices=tuple(
                KeySlice(index, mask=mask, settled=settled.get(index) == sources[index])
                for index, mask in sorted(keys.items())
            ),
            current=before,
        )
        with VolumeSession(self.predictor, self.image, self.preset) as session:
            result = segment_volume_for_model(session, [prompt])
        self._plane_set = None  # the predictor now holds another slice
        mask = result.objects[0].mask
        changed = [i for i in range(self.depth) if i not in keys and not np.array_equal(mask[i], before[i])]
        for index in changed:
            plane = self.labels[index]
            plane[plane == self.label] = 0
            plane[mask[index]] = self.label
        filled = set(self.propagated.get(self.label, [])) | set(changed)
        self.propagated[self.label] = sorted(i for i in filled if i not in keys and mask[i].any())
        self._propagated_from[self.label] = sources
        self._write_labels()
        self._save_state()
        latency = (time.perf_counter() - started) * 1000
        details = {"slices": changed, "keys": sorted(keys), "decoded": result.decodings}
        self._log("propagate", latency_ms=round(latency, 3), details=details)
        return changed

    # -- storage ------------------------------------------------------------------------------

    def _set_preset(self, preset: IntensityPreset) -> None:
        self._propagated_from = {}  # the model sees other slices now: every chain runs again
        self.preset = preset
        self._gray = volume_to_uint8(self.image, preset) if isinstance(self.image, Volume) else None
        self._plane_set = None

    def _keep_draft(self, discard: bool, action: str) -> None:
        if self.has_unaccepted_draft and not discard:
            pixels = int(self.draft.mask.sum())
            raise DraftNotAcceptedError(
                f"object {self.label} has a mask of {pixels} pixels that is not accepted; "
                f"accept it (or discard it) before {action}"
            )
        if self.has_unaccepted_draft:
            self._log("discard", details={"pixels": int(self.draft.mask.sum())})

    def _check_label_file(self) -> None:
        """Refuse to write over a label file someone else changed since samia last wrote or read it
        (its stamp moved and its SHA-256 differs)."""
        if self._labels_sha256 is None or not self.label_path.is_file():
            return
        if file_stamp(self.label_path) == self._labels_stamp or file_sha256(self.label_path) == self._labels_sha256:
            return
        self._log("external_change", details={"file": self.label_path.name, "refused": "write"})
        raise LabelFileChangedError(
            self.label_path,
            "was changed on disk while this case was open; it is kept as it is and nothing was written: "
            "open the case again to continue from it (the object being drawn is kept)",
        )

    def _start(self, label: int) -> None:
        self.label = label
        self._history = [Draft.empty(self.plane_shape)]
        self._position = 0

    def _set_plane(self, edit: Edit) -> None:
        """Encode the current plane (once) before a click or box reaches the model."""
        if self.predictor is not None and edit.kind in MODEL_EDITS and self._plane_set != self.slice_index:
            self.predictor.set_image(self.plane_rgb())
            self._plane_set = self.slice_index

    def _write_labels(self) -> None:
        from samia.io import write_label_map

        reference = self.image if isinstance(self.image, Volume) else None
        write_label_map(self.label_path, self.labels, reference)
        self._labels_sha256, self._labels_stamp = file_sha256(self.label_path), file_stamp(self.label_path)
        if self.dicom_series is not None:
            from samia.io.dicom_seg import write_dicom_seg

            present = [int(v) for v in np.unique(self.labels) if v]
            names = [self.names.get(n, f"object {n}") for n in range(1, max(present, default=0) + 1)]
            write_dicom_seg(self.folder / "labels.seg.dcm", self.labels, names, self.dicom_series)

    def _write_model_answer(self, edits: tuple[Edit, ...]) -> None:
        """Put the model's answer to the first click or box of ``edits`` (the current object's, on
        this 2D image) into ``model_answers.png``; nothing when no edit asked the model."""
        from samia.io import read_label, write_label_map

        first = next((edit for edit in edits if edit.kind in MODEL_EDITS), None)
        if first is None:
            return
        self._set_plane(first)
        answer = apply_edit(Draft.empty(self.plane_shape), first, self.predictor).model_mask
        path = self.folder / MODEL_ANSWERS
        answers = np.asarray(read_label(path).array, dtype=np.uint16) if path.is_file() else np.zeros_like(self.labels)
        answers[answers == self.label] = 0
        answers[answer] = self.label
        write_label_map(path, answers)

    def _save_state(self) -> None:
        state = {
            "format": STATE_FORMAT,
            "case": self.case_id,
            "names": {str(k): v for k, v in self.names.items()},
            "accepted": {str(k): v for k, v in self.accepted.items()},
            "propagated": {str(k): v for k, v in self.propagated.items()},
            "labels_sha256": self._labels_sha256,
            "preset": dataclasses.asdict(self.preset),
            "current": {
                "label": self.label,
                "slice": self.slice_index,
                "edits": [e.to_record() for e in self._history[-1].edits],
                "applied": self._position,
            },
        }
        atomic_write_bytes(self.folder / STATE_NAME, json.dumps(state, indent=1).encode())

    def _resume(self) -> None:
        if self.label_path.is_file():
            self._adopt_label_file()
        saved = read_state(self.folder)
        if saved is None:
            return
        self.names = {**saved.names, **self.names}
        self.accepted, self.propagated = saved.accepted, saved.propagated
        if saved.preset is not None and saved.preset != self.preset:
            self._set_preset(saved.preset)
        if self._labels_sha256 is not None and saved.labels_sha256 != self._labels_sha256:
            self._log("external_change", details={"file": self.label_path.name})
        self.slice_index = min(max(saved.slice_index, 0), self.depth - 1)
        self._start(saved.label)
        for edit in saved.edits:  # the same model answers the same edits the same way
            self._set_plane(edit)
            self._history.append(apply_edit(self._history[-1], edit, self.predictor))
        self._position = min(max(saved.applied, 0), len(saved.edits))

    def _adopt_label_file(self) -> None:
        from samia.io import read_label

        stored = read_label(self.label_path)
        if tuple(stored.shape) != tuple(self.labels.shape):
            raise GeometryMismatchError(
                self.label_path, f"holds a label map of shape {stored.shape}, the case is {self.labels.shape}"
            )
        values = np.asarray(stored.array)
        if values.size and values.max() > 65535:
            raise InvalidLabelError(self.label_path, f"label values up to {values.max()}; at most 65535")
        self.labels = values.astype(np.uint16)
        self._labels_sha256, self._labels_stamp = file_sha256(self.label_path), file_stamp(self.label_path)

    def _log(self, kind: str, **fields: Any) -> None:
        append_event(
            self.out,
            when=self.clock(),
            mode=self.mode,
            case=self.case_id,
            slice=self.slice_index if self.is_volume else None,
            object=self.label,
            kind=kind,
            **fields,
        )


def _digest(mask: np.ndarray) -> str:
    """SHA-256 of a bool mask's bits and shape (which key slices changed since the last propagation)."""
    return hashlib.sha256(np.packbits(mask).tobytes() + str(mask.shape).encode()).hexdigest()


def _edit_details(edit: Edit, draft: Draft) -> dict[str, Any]:
    details: dict[str, Any] = {"pixels": int(draft.mask.sum())}
    if edit.kind == "point":
        details["positive"] = edit.positive
    if edit.kind in ("brush", "erase"):
        details["radius"] = edit.radius
    else:
        details["predicted_iou"] = round(draft.predicted_iou, 4)
    return details
