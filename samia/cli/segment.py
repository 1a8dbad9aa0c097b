"""``samia segment``: one image (or one slice of a volume), one or more prompts, a mask or label map;
no ground truth needed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from samia.cli.choices import BACKEND_HELP, MODALITY_HELP, PRECISION_HELP, PRESET_HELP
from samia.cli.command import SamiaCommand
from samia.cli.options import Checkpoint, ModelName
from samia.models.catalogue import DEFAULT_MODEL
from samia.types import Image2D, Prompt, Volume

if TYPE_CHECKING:
    import numpy as np

    from samia.cli.segment_volume import SegmentNaming
    from samia.cli.timings import StageClock
    from samia.data.settings import CaseSettings
    from samia.models.settings import ModelSettings
    from samia.segmentation import Segmentation

BOX_HELP = "X0 Y0 X1 Y1"


class SegmentCommand(SamiaCommand):
    """``samia segment``, whose ``--box`` takes four numbers (``--box 10 20 30 40``) and ``--box3d``
    six, each repeatable.

    Click cannot repeat an option of several values with typer, so the numbers after each ``--box``
    / ``--box3d`` are joined into one value before parsing; too few is a usage error that says what
    the option expects.
    """

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: a click Context (typer bundles click)
        return super().parse_args(ctx, join_box_numbers(args))


BOX_OPTIONS = {
    "--box": (4, f"four numbers {BOX_HELP} (pixels, inclusive, x0 <= x1, y0 <= y1)"),
    "--box3d": (6, "six numbers X0 Y0 Z0 X1 Y1 Z1 (voxels, inclusive, x0 <= x1, y0 <= y1, z0 <= z1)"),
}
"""Option -> (how many numbers, what they are)."""


def join_box_numbers(args: list[str]) -> list[str]:
    """``[..., "--box", "1", "2", "3", "4", ...]`` -> ``[..., "--box", "1,2,3,4", ...]`` (and six for ``--box3d``).

    ``--box=1,2,3,4`` and ``--box 1,2,3,4`` are kept as they are.

    Raises:
        typer.BadParameter: an option followed by too few numbers (a usage error, exit code 2).
    """
    joined: list[str] = []
    index = 0
    while index < len(args):
        token = args[index]
        index += 1
        if token not in BOX_OPTIONS or (index < len(args) and "," in args[index]):
            joined.append(token)
            continue
        count, names = BOX_OPTIONS[token]
        numbers: list[str] = []
        while index < len(args) and len(numbers) < count and _is_number(args[index]):
            numbers.append(args[index])
            index += 1
        if len(numbers) < count:
            got = f"{len(numbers)}: {' '.join(numbers)}" if numbers else "none"
            raise typer.BadParameter(
                f"takes {names}; got {got}",
                param_hint=token,
            )
        joined += [token, ",".join(numbers)]
    return joined


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def segment_command(
    image: Annotated[
        Path,
        typer.Argument(
            help="Image file (PNG/JPEG/TIFF/BMP, a DICOM file, NIfTI/NRRD/MHA, a CVPR 2024 challenge .npz) "
            "or a folder holding one DICOM series.",
            metavar="IMAGE",
            show_default=False,
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            help="Mask to write: .png/.tif for 2D, .nii.gz/.nrrd/.mha with geometry; a volume's label map "
            "also as .dcm (DICOM-SEG, from a DICOM series folder; the .nii.gz is written beside it) or .npz "
            "(the challenge's segs). One object: 0/255 (PNG/TIFF) or 0/1; several: label values 1..N.",
            metavar="FILE",
        ),
    ],
    box: Annotated[
        list[str] | None,
        typer.Option(help=f"Box {BOX_HELP} in pixels (inclusive); repeat for one object per box.", metavar=BOX_HELP),
    ] = None,
    point: Annotated[
        list[str] | None, typer.Option(help="Positive point X,Y in pixels; repeat for more.", metavar="X,Y")
    ] = None,
    negative: Annotated[
        list[str] | None, typer.Option(help="Negative point X,Y in pixels; repeat for more.", metavar="X,Y")
    ] = None,
    prompts: Annotated[
        Path | None,
        typer.Option(
            help='JSON lines, one object a line: {"box": [x0, y0, x1, y1], "points": [[x, y], ...], '
            '"labels": [1, 0, ...]} (any of them); instead of --box/--point.',
            metavar="FILE",
        ),
    ] = None,
    model: ModelName = DEFAULT_MODEL,
    checkpoint: Checkpoint = None,
    slice_index: Annotated[
        int | None, typer.Option("--slice", help="Slice of a volume along --axis.", metavar="N")
    ] = None,
    axis: Annotated[int, typer.Option(help="Volume axis to slice (0 = z).", metavar="0|1|2")] = 0,
    modality: Annotated[str | None, typer.Option(help=MODALITY_HELP, metavar="NAME")] = None,
    preset: Annotated[str | None, typer.Option(help=PRESET_HELP, metavar="NAME")] = None,
    multimask: Annotated[
        bool | None,
        typer.Option(
            "--multimask/--single-mask",
            help="Pick among 3 candidates by predicted IoU (default: only for a lone point).",
            metavar="",
        ),
    ] = None,
    probabilities: Annotated[
        Path | None,
        typer.Option(
            help="Also write the sigmoid probability map (float32 .tif, or .nii.gz for geometry); several "
            "objects: FILE_1, FILE_2, ...",
            metavar="FILE",
        ),
    ] = None,
    overlay: Annotated[
        Path | None, typer.Option(help="Also write a PNG of the image with the masks and prompts.", metavar="FILE.png")
    ] = None,
    device: Annotated[str, typer.Option(help="torch device.", metavar="DEVICE")] = "cpu",
    backend: Annotated[str, typer.Option(help=BACKEND_HELP, metavar="NAME")] = "auto",
    precision: Annotated[str, typer.Option(help=PRECISION_HELP, metavar="NAME")] = "fp32",
    decode_batch: Annotated[
        int, typer.Option(help="Prompts decoded at a time (bounds memory: SAM ViT-H at 1024 px).", metavar="N")
    ] = 32,
    box3d: Annotated[
        list[str] | None,
        typer.Option(
            help="3D box X0 Y0 Z0 X1 Y1 Z1 in voxels (inclusive; x = last array axis); repeat for one object per "
            "box. Segments the whole volume (CVPR 2024 rule).",
            metavar="X0 Y0 Z0 X1 Y1 Z1",
        ),
    ] = None,
    propagate: Annotated[
        bool, typer.Option("--propagate", help="Propagate the --slice prompt through the volume.")
    ] = False,
    projection: Annotated[
        str | None,
        typer.Option(help="How a slice prompts the next: box (default), box_mask, points, mask.", metavar="NAME"),
    ] = None,
    min_iou_with_previous: Annotated[
        float | None,
        typer.Option(help="Stop where a mask's IoU with the previous slice's falls below this.", metavar="X"),
    ] = None,
    min_predicted_iou: Annotated[
        float | None, typer.Option(help="Stop where the model's predicted IoU falls below this.", metavar="X")
    ] = None,
    max_empty: Annotated[
        int | None, typer.Option(help="Stop after this many consecutive empty slices.", metavar="K")
    ] = None,
    tracking: Annotated[
        str,
        typer.Option(
            help="Volumes: memory (SAM 2's memory bank, both directions from the prompted slices; SAM 2 family), "
            "slices (samia's slice-by-slice engine), or auto (memory for SAM 2 models).",
            metavar="ENGINE",
        ),
    ] = "auto",
    speed: Annotated[
        str,
        typer.Option(
            help="Volumes: accurate or default (every slice decoded), or fast (every 3rd slice where the object "
            "changes slowly, the slices between filled by shape-based interpolation).",
            metavar="LEVEL",
        ),
    ] = "default",
    segment_label: Annotated[
        list[str] | None,
        typer.Option(
            help="Name of each object's DICOM-SEG segment, in the order of the prompts; repeat (default: object 1..N).",
            metavar="NAME",
        ),
    ] = None,
    timings: Annotated[
        bool,
        typer.Option(
            "--timings", help="Print where the time went (start, read, model, encode, decode, write) on stderr."
        ),
    ] = False,
    segment_code: Annotated[
        list[str] | None,
        typer.Option(
            help="SNOMED CT type of each object's DICOM-SEG segment, in the order of the prompts: a DICOM CID 7151 "
            "keyword or concept id (Liver, 10200004; `samia segment-codes WORD` finds them); repeat "
            "(default: Tissue).",
            metavar="CODE",
        ),
    ] = None,
) -> None:
    """Segment objects from boxes and/or clicks and write the mask (one object) or label map (several);
    with --box3d or --propagate (or a challenge .npz), through the whole volume."""
    from samia.cli.timings import StageClock
    from samia.data.settings import CaseSettings
    from samia.io.formats import NPZ_SUFFIXES, file_suffix
    from samia.models.settings import ModelSettings

    clock = StageClock()
    if decode_batch < 1:
        from samia.errors import ConfigurationError

        raise ConfigurationError(f"--decode-batch must be at least 1, got {decode_batch}")
    segments = _segment_naming(out, segment_label or [], segment_code or [])
    if box3d or propagate or file_suffix(image) in NPZ_SUFFIXES:
        from samia.cli.paths import check_output_file
        from samia.errors import ConfigurationError

        if box3d and (box or point or negative or prompts):
            raise ConfigurationError("give either --box3d or --box/--point/--prompts (with --slice and --propagate)")
        if probabilities is not None or overlay is not None:
            raise ConfigurationError("--probabilities and --overlay are written for one image or slice, not a volume")
        from samia.cli.segment_volume import VolumeRequest, segment_whole_volume

        check_output_file(out, image)
        given = {
            "projection": projection,
            "min_iou_with_previous": min_iou_with_previous,
            "min_predicted_iou": min_predicted_iou,
            "max_empty": max_empty,
            "output": None if multimask is None else ("predicted_iou" if multimask else "single"),
        }
        request = VolumeRequest(
            image,
            out,
            ModelSettings(model, None if checkpoint is None else str(checkpoint), device, backend, precision),
            CaseSettings(modality=modality, axis=axis, preset=preset),
            list(box3d or []),
            slice_index,
            propagate,
            {k: v for k, v in given.items() if v is not None},
            decode_batch,
            segments,
            speed,
            tracking,
        )
        key_prompts = _prompts_from_options(image, box, point, negative, prompts) if propagate else []
        segment_whole_volume(request, key_prompts, clock)
    else:
        _segment_one_plane(
            image, out, _prompts_from_options(image, box, point, negative, prompts), slice_index, multimask,
            ModelSettings(model, None if checkpoint is None else str(checkpoint), device, backend, precision),
            CaseSettings(modality=modality, axis=axis, preset=preset), probabilities, overlay, decode_batch, clock,
        )  # fmt: skip
    if timings:
        typer.echo(clock.line(), err=True)


def _segment_naming(out: Path, labels: list[str], codes: list[str]) -> SegmentNaming:
    """The segment labels and codes asked for, checked before any model runs."""
    from samia.cli.segment_volume import SegmentNaming
    from samia.errors import ConfigurationError
    from samia.io.formats import file_suffix

    if not labels and not codes:
        return SegmentNaming()
    if file_suffix(out) != ".dcm":
        raise ConfigurationError(
            f"--out {out}: --segment-label and --segment-code name and code DICOM-SEG segments; give --out FILE.dcm"
        )
    from samia.io.segment_codes import segment_code  # pydicom's code tables: only when asked for

    return SegmentNaming(tuple(labels), tuple(segment_code(text) for text in codes))


def _segment_one_plane(
    image: Path, out: Path, object_prompts: list[Prompt], slice_index: int | None, multimask: bool | None,
    model: ModelSettings, reading: CaseSettings, probabilities: Path | None, overlay: Path | None, decode_batch: int,
    clock: StageClock,
) -> None:  # fmt: skip
    """One image or one slice through :func:`samia.segmentation.segment`, and its files, each step
    timed on ``clock``."""
    from samia.cli.paths import check_output_file
    from samia.errors import ConfigurationError
    from samia.io import read_image, read_image_slice
    from samia.io.formats import WRITABLE_VOLUME_SUFFIXES, file_suffix
    from samia.models.interface import runtime_label
    from samia.segmentation import as_predictor, segment

    for path in (out, probabilities, overlay):
        if path is not None:
            check_output_file(path, image)
    if overlay is not None and not str(overlay).lower().endswith(".png"):
        raise ConfigurationError(f"--overlay {overlay}: the overlay is a picture; give a .png file")
    volume_out = file_suffix(out) in WRITABLE_VOLUME_SUFFIXES
    loaded: Image2D | Volume
    with clock.stage("read"):
        if slice_index is not None and not volume_out:  # only that slice is read
            loaded, on_slice = read_image_slice(image, slice_index, reading.axis, reading.modality), None
        else:
            loaded, on_slice = read_image(image, reading.modality), slice_index
    with clock.stage("model"):
        predictor = as_predictor(model, decode_batch)
    with clock.stage("prepare"):
        result = segment(loaded, object_prompts, predictor, reading=reading, slice_index=on_slice, multimask=multimask)
    clock.split("prepare", {"encode": predictor.encode_seconds, "decode": predictor.decode_seconds})
    for number, prompt in enumerate(result.prompts, start=1):
        if isinstance(prompt, Prompt) and prompt.box is not None and prompt.meta.get("box_clipped"):
            typer.echo(f"note: box {number} was clipped to the image: {prompt.box.tolist()}", err=True)
    volume = loaded if volume_out and not isinstance(loaded, Image2D) else None  # the slice goes back into its volume
    with clock.stage("write"):
        _write_outputs(out, probabilities, overlay, result, volume, slice_index, reading.axis)
    _report(out, result, runtime_label(predictor.model))


def _prompts_from_options(
    image: Path, box: list[str] | None, point: list[str] | None, negative: list[str] | None, prompts_file: Path | None
) -> list[Prompt]:
    """The prompt of every object: one per ``--box``; ``--box`` with points = one object; points
    alone = one object; or one per line of ``--prompts``."""
    import numpy as np

    from samia.errors import ConfigurationError

    positives = [_parse_numbers(p, 2, "point", "X,Y") for p in point or []]
    negatives = [_parse_numbers(p, 2, "point", "X,Y") for p in negative or []]
    boxes = [_parse_numbers(b, 4, "box", BOX_HELP) for b in box or []]
    if prompts_file is not None:
        if boxes or positives or negatives:
            raise ConfigurationError("give either --prompts or --box/--point/--negative, not both")
        return _read_prompts(prompts_file)
    if not boxes and not positives:
        raise ConfigurationError(f"give a --box {BOX_HELP} and/or at least one --point X,Y (or --prompts FILE)")
    if len(boxes) > 1 and (positives or negatives):
        raise ConfigurationError(
            "several --box with --point/--negative: which point belongs to which box? Put one object a line in --prompts"
        )
    points = positives + negatives
    point_array = np.array(points, dtype=np.float64) if points else None
    labels = np.array([1] * len(positives) + [0] * len(negatives)) if points else None
    try:
        if not boxes:
            return [Prompt(points=point_array, labels=labels)]
        return [Prompt(points=point_array, labels=labels, box=np.array(b)) for b in boxes]
    except ValueError as error:
        raise ConfigurationError(f"{image}: impossible prompt: {error}") from None


def _read_prompts(path: Path) -> list[Prompt]:
    """One :class:`~samia.types.Prompt` per non-empty line of a JSON-lines file."""
    import json

    from samia.errors import InputError, MissingFileError

    if not path.is_file():
        raise MissingFileError(path, "no such prompts file")
    prompts = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not {"box", "points"} & set(record):
                raise ValueError('a line must be a JSON object with "box" and/or "points" (and "labels")')
            if record.get("points") is not None and record.get("labels") is None:
                record = {**record, "labels": [1] * len(record["points"])}
            prompts.append(Prompt.from_record(record))
        except (ValueError, TypeError) as error:
            raise InputError(path, f"line {number}: {error}") from None
    if not prompts:
        raise InputError(path, "holds no prompt")
    return prompts


def _write_outputs(
    out: Path,
    probabilities: Path | None,
    overlay: Path | None,
    result: Segmentation,
    volume: Volume | None,
    slice_index: int | None,
    axis: int,
) -> None:
    """The mask or label map, the probability maps and the overlay of a 2D ``result``: on its
    plane's grid, or placed at ``slice_index`` into ``volume``'s grid when a volume is given."""
    from samia.io import write_label_map, write_mask, write_probabilities
    from samia.transforms import to_rgb_uint8

    def placed(array: np.ndarray) -> np.ndarray:
        if volume is None or slice_index is None:
            return array
        return result.placed(array, volume, slice_index, axis)

    reference = result.grid if volume is None else volume
    if len(result.masks) == 1:
        write_mask(out, placed(result.masks[0]), reference=reference)
    else:
        write_label_map(out, placed(result.label_map()), reference=reference)
    if probabilities is not None and result.probabilities is not None:
        for number, probability in enumerate(result.probabilities, start=1):
            target = probabilities if len(result.masks) == 1 else _numbered(probabilities, number)
            write_probabilities(target, placed(probability), reference=reference)
    if overlay is not None:
        from samia.analysis.overlays import segmentation_figure

        title = f"{Path(result.grid.path or '').name}" + ("" if slice_index is None else f" slice {slice_index}")
        assert isinstance(result.grid, Image2D)  # a 2D answer: its plane
        prompts = [prompt for prompt in result.prompts if isinstance(prompt, Prompt)]
        rgb = to_rgb_uint8(result.grid, result.preset)
        segmentation_figure(rgb, list(result.masks), prompts, title).savefig(overlay, dpi=120)


def _numbered(path: Path, number: int) -> Path:
    """``prob.nii.gz`` -> ``prob_2.nii.gz``."""
    from samia.io.formats import file_suffix, image_stem

    return path.with_name(f"{image_stem(path)}_{number}{file_suffix(path)}")


def _report(out: Path, result: Segmentation, ran_on: str) -> None:
    """What was written (and what ran the model: ``ran_on``) on stdout; empty masks said plainly on
    stderr (the exit code stays 0)."""
    from samia.transforms import explain_preset

    count = len(result.masks)
    for number, (mask, iou) in enumerate(zip(result.masks, result.predicted_iou), start=1):
        if not mask.any():
            which = f"object {number}: " if count > 1 else ""
            typer.echo(
                f"{which}the model returned an empty mask (predicted IoU {iou:.3f}); "
                "try a box, a tighter box, or another --preset",
                err=True,
            )
    sizes = ", ".join(str(int(mask.sum())) for mask in result.masks)
    ious = ", ".join(f"{iou:.3f}" for iou in result.predicted_iou)
    kind = "mask" if count == 1 else f"label map of {count} objects"
    preset = explain_preset(result.preset, result.grid)
    typer.echo(f"wrote {out} ({kind}): {sizes} pixels, predicted IoU {ious}, preset {preset}; ran on {ran_on}")


def _parse_numbers(text: str, count: int, what: str, form: str) -> tuple[float, ...]:
    from samia.errors import ConfigurationError

    try:
        numbers = tuple(float(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        numbers = ()
    if len(numbers) != count:
        raise ConfigurationError(f"{what} {text!r} is not {form} ({count} numbers)")
    return numbers
