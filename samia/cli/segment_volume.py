"""``samia segment`` on a whole volume: ``--box3d`` boxes, or a key slice with ``--propagate``; and the
CVPR 2024 challenge's ``.npz`` files (their own ``boxes``, a ``segs`` file back)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from samia.cli.timings import StageClock
    from samia.data.settings import CaseSettings
    from samia.io.segment_codes import SegmentCode
    from samia.models.settings import ModelSettings

BOX3D_HELP = "X0 Y0 Z0 X1 Y1 Z1"


@dataclass(frozen=True)
class SegmentNaming:
    """What the DICOM-SEG's segments are called and coded (``--segment-label``, ``--segment-code``).

    Attributes:
        labels: one name per object, or none (``object 1..N``).
        codes: one SNOMED CT code per object, or none (each ``Tissue``).
    """

    labels: tuple[str, ...] = ()
    codes: tuple[SegmentCode, ...] = ()

    def for_objects(self, count: int) -> tuple[list[str], list[SegmentCode] | None]:
        """``(names, codes)`` of ``count`` objects.

        Raises:
            ConfigurationError: labels or codes were given, but not one per object.
        """
        from samia.errors import ConfigurationError

        for option, given in (("--segment-label", self.labels), ("--segment-code", self.codes)):
            if given and len(given) != count:
                raise ConfigurationError(
                    f"{len(given)} {option} given for {count} object{'s' * (count > 1)}: give one per object"
                )
        names = list(self.labels) or [f"object {n}" for n in range(1, count + 1)]
        return names, list(self.codes) or None


@dataclass(frozen=True)
class VolumeRequest:
    """The volume options of one ``samia segment`` call (as parsed; checked by :func:`segment_whole_volume`)."""

    image: Path
    out: Path
    model: ModelSettings
    reading: CaseSettings
    box3d: list[str]
    slice_index: int | None
    propagate: bool
    overrides: dict[str, Any]
    decode_batch: int = 32
    segments: SegmentNaming = SegmentNaming()
    speed: str = "default"
    tracking: str = "auto"

    def predictor(self) -> Any:
        """A ``SamiaPredictor`` of the requested model, backend and decode batch."""
        from samia.segmentation import as_predictor

        return as_predictor(self.model, self.decode_batch)


def segment_whole_volume(request: VolumeRequest, key_prompts: list[Any], clock: StageClock) -> None:
    """Segment every object through the volume and write the label map (``.nii.gz``/``.nrrd``/``.mha``
    on the input's grid, ``.dcm`` DICOM-SEG for a DICOM series, ``.npz`` the challenge's ``segs``).

    Args:
        request: the options.
        key_prompts: the 2D prompt of each object on ``--slice`` (``--propagate``), else empty.
        clock: where each step's time is added (``--timings``).
    """
    from samia.errors import ConfigurationError
    from samia.io import read_image
    from samia.io.formats import NPZ_SUFFIXES, WRITABLE_VOLUME_SUFFIXES, file_suffix
    from samia.types import Volume
    from samia.volume.memory import TRACKING
    from samia.volume.propagation import sampling_for

    sampling_for(request.speed)  # an unknown level or engine is refused before anything is read
    if request.tracking not in TRACKING:
        raise ConfigurationError(f"--tracking {request.tracking}: choose one of {', '.join(TRACKING)}")
    ending = file_suffix(request.out)
    writable = (*WRITABLE_VOLUME_SUFFIXES, ".dcm", *NPZ_SUFFIXES)
    if ending not in writable:
        raise ConfigurationError(f"--out {request.out}: a volume's label map is written as {', '.join(writable)}")
    if ending == ".dcm" and not request.image.is_dir():
        raise ConfigurationError(f"--out {request.out}: a DICOM-SEG needs a DICOM series folder as the image")
    with clock.stage("read"):
        loaded = read_image(request.image, request.reading.modality)
    from_file = file_suffix(request.image) in NPZ_SUFFIXES and not request.box3d and not request.propagate
    if not isinstance(loaded, Volume):
        if from_file:
            _segment_challenge_2d(request, loaded)
            return
        raise ConfigurationError(
            f"{request.image} is a 2D image {loaded.shape}: --box3d and --propagate need a volume; use --box"
        )
    prompts = _volume_prompts(request, loaded, key_prompts, from_file)
    names, codes = request.segments.for_objects(len(prompts))
    labels, report = _run(request, loaded, prompts, clock)
    written = f"{request.out}"
    with clock.stage("write"):
        if ending == ".dcm":
            label_map = request.out.with_name(request.out.name[: -len(ending)] + ".nii.gz")
            _write_label_map(label_map, labels, names, loaded)
            _write_seg_after(label_map, request.out, labels, names, codes, request.image)
            written = f"{label_map} and {request.out}"
        elif ending in NPZ_SUFFIXES:
            from samia.io.npz import write_segs

            write_segs(request.out, labels)
        else:
            _write_label_map(request.out, labels, names, loaded)
    typer.echo(f"wrote {written} ({len(names)} object{'s' if len(names) > 1 else ''}): {report}")


def _write_label_map(path: Path, labels: Any, names: list[str], volume: Any) -> None:
    """The label map on the volume's grid (one object: a 0/1 uint8 mask)."""
    import numpy as np

    from samia.io import write_label_map

    write_label_map(path, labels if len(names) > 1 else (labels > 0).astype(np.uint8), reference=volume)


def _write_seg_after(
    label_map: Path, out: Path, labels: Any, names: list[str], codes: list[SegmentCode] | None, series: Path
) -> None:
    """The DICOM-SEG, once the label map is safe on disk: a failure names both files."""
    from samia.errors import InputError
    from samia.io.dicom_seg import write_dicom_seg

    try:
        write_dicom_seg(out, labels, names, series, codes)
    except (InputError, ValueError, AttributeError, TypeError) as error:  # highdicom's own checks raise these
        problem = error.problem if isinstance(error, InputError) else " ".join(str(error).split())[:300]
        raise InputError(
            out, f"the DICOM-SEG cannot be written ({problem}); the label map is saved in {label_map}"
        ) from None


def _volume_prompts(request: VolumeRequest, volume: Any, key_prompts: list[Any], from_file: bool) -> list[Any]:
    from samia.errors import ConfigurationError
    from samia.volume import Box3D, KeySlice, VolumePrompt

    source = str(request.image)
    if from_file:
        from samia.io.npz import read_boxes

        boxes = read_boxes(request.image)
        if boxes.shape[1] != 6:
            raise ConfigurationError(f"{source}: a volume needs N x 6 boxes, the file has {boxes.shape}")
        return [VolumePrompt(box3d=Box3D.from_values(b.tolist(), volume.shape, source)) for b in boxes]
    if request.box3d:
        if request.propagate or key_prompts:
            raise ConfigurationError("give either --box3d or --slice with --box/--point and --propagate, not both")
        values = [_numbers(text) for text in request.box3d]
        return [VolumePrompt(box3d=Box3D.from_values(v, volume.shape, source)) for v in values]
    if request.slice_index is None:
        raise ConfigurationError("--propagate needs --slice K: the slice the --box/--point prompt is on")
    if not 0 <= request.reading.axis < 3:
        raise ConfigurationError(f"--axis {request.reading.axis} is not an axis of the volume {source} (0, 1 or 2)")
    depth = volume.shape[request.reading.axis]
    if not 0 <= request.slice_index < depth:
        raise ConfigurationError(
            f"--slice {request.slice_index} is outside {source}: axis {request.reading.axis} has slices 0..{depth - 1}"
        )
    return [VolumePrompt(key_slices=(KeySlice(request.slice_index, prompt),)) for prompt in key_prompts]


def _run(request: VolumeRequest, volume: Any, prompts: list[Any], clock: StageClock) -> tuple[Any, str]:
    """``(label map, summary line)`` of :func:`samia.segment` on the volume (timed on ``clock``)."""
    from samia.cli.progress import slice_progress
    from samia.models.interface import runtime_label
    from samia.segmentation import segment
    from samia.transforms import explain_preset
    from samia.volume.memory import MemorySettings, volume_settings
    from samia.volume.shrinkage import find_shrinkage

    with clock.stage("model"):
        predictor = request.predictor()
    propagation = volume_settings(predictor.model, request.tracking, prompts[0].box3d is not None, request.overrides)
    with clock.stage("propagate"), slice_progress(len(prompts)) as progress:
        answer = segment(
            volume, prompts, predictor, reading=request.reading, propagation=propagation, progress=progress,
            speed=request.speed,
        )  # fmt: skip
    clock.split("propagate", {"encode": predictor.encode_seconds, "decode": predictor.decode_seconds})
    result = answer.propagation
    assert result is not None  # volume prompts always propagate
    for number, obj in enumerate(result.objects, start=1):
        if not obj.mask.any():
            typer.echo(f"object {number}: the model returned an empty mask on every slice; try a tighter box", err=True)
        shrinking = find_shrinkage(obj)
        if shrinking is not None:
            typer.echo(f"object {number}: {shrinking.advice()}", err=True)
    sizes = ", ".join(
        f"{int(obj.mask.sum())} voxels on {sum(s.area > 0 for s in obj.steps)} slices" for obj in result.objects
    )
    preset = explain_preset(answer.preset, volume)
    filled = sum(step.source == "filled" for obj in result.objects for step in obj.steps)
    between = f" (speed {request.speed}: {filled} filled between)" if request.speed != "default" else ""
    work = f"{result.decodings} decoded{between}"
    if isinstance(propagation, MemorySettings):
        from samia.models.sam2_tracker import hole_filling_line

        work = f"{result.decodings} tracked with SAM 2's memory ({hole_filling_line()})"
    report = f"{sizes}; {result.slices_encoded} slices encoded, {work}, preset {preset}; ran on {runtime_label(predictor.model)}"
    return answer.label_map(), report


def _segment_challenge_2d(request: VolumeRequest, image: Any) -> None:
    """A 2D challenge file: each row of ``boxes`` decoded on ``imgs``; ``segs`` with the later box
    winning where masks overlap (the baseline's ``segs[mask > 0] = idx``)."""
    import numpy as np

    from samia.errors import ConfigurationError
    from samia.io.npz import read_boxes, write_segs
    from samia.models.interface import runtime_label
    from samia.transforms import get_preset, preset_for, to_rgb_uint8
    from samia.types import Prompt

    boxes = read_boxes(request.image)
    if boxes.shape[1] != 4:
        raise ConfigurationError(f"{request.image}: a 2D image needs N x 4 boxes, the file has {boxes.shape}")
    intensity = get_preset(request.reading.preset) if request.reading.preset else preset_for(image)
    predictor = request.predictor()
    predictor.set_image(to_rgb_uint8(image, intensity))
    try:
        predictions = predictor.predict_batch([Prompt(box=box) for box in boxes], multimask_output=False)
    except ValueError as error:
        raise ConfigurationError(f"{request.image}: impossible prompt: {error}") from None
    segs = np.zeros(image.shape, dtype=np.uint16)
    for number, prediction in enumerate(predictions, start=1):
        segs[prediction.masks[0]] = number
    write_segs(request.out, segs)
    typer.echo(
        f"wrote {request.out} (segs of {len(boxes)} boxes), preset {intensity.name}; "
        f"ran on {runtime_label(predictor.model)}"
    )


def _numbers(text: str) -> list[float]:
    from samia.errors import ConfigurationError

    try:
        return [float(v) for v in text.replace(" ", "").split(",")]
    except ValueError:
        raise ConfigurationError(f"--box3d {text!r} is not {BOX3D_HELP} (six numbers)") from None
