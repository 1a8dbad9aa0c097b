"""``samia segment``: one image (or one slice of a volume), one prompt, one mask; no ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def segment_command(
    image: Annotated[Path, typer.Argument(help="Image file (PNG/JPEG/TIFF/DICOM/NIfTI/NRRD/MHA) or DICOM folder.")],
    model: Annotated[str, typer.Option(help="Model name (see `samia models`).")],
    out: Annotated[Path, typer.Option(help="Mask file to write: .png for 2D, .nii.gz for a volume.")],
    box: Annotated[
        tuple[float, float, float, float] | None, typer.Option(help="Box X0 Y0 X1 Y1 in pixels (inclusive).")
    ] = None,
    point: Annotated[list[str] | None, typer.Option(help="Positive point 'X,Y' in pixels; repeat for more.")] = None,
    negative: Annotated[list[str] | None, typer.Option(help="Negative point 'X,Y' in pixels; repeat for more.")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="Weights file (required for SAM/MedSAM).")] = None,
    slice_index: Annotated[int | None, typer.Option("--slice", help="Slice of a volume along --axis.")] = None,
    axis: Annotated[int, typer.Option(help="Volume axis to slice (0 = z).")] = 0,
    modality: Annotated[str | None, typer.Option(help="Override the file's modality (CT, MR, US, ...).")] = None,
    preset: Annotated[str | None, typer.Option(help="Intensity preset (default: the modality's).")] = None,
    multimask: Annotated[
        bool | None,
        typer.Option(
            "--multimask/--single-mask",
            help="Pick among 3 candidates by predicted IoU (default: only for a lone point).",
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="torch device.")] = "cpu",
) -> None:
    """Segment one object from a box and/or clicks and write the mask."""
    import numpy as np

    from samia.cli.paths import check_output_file
    from samia.errors import ConfigurationError
    from samia.io import read_image, read_image_slice, write_mask
    from samia.models import build_model
    from samia.predictor import SamiaPredictor
    from samia.transforms import default_preset, get_preset, to_rgb_uint8
    from samia.types import Image2D, Prompt

    positives = [_parse_point(p) for p in point or []]
    negatives = [_parse_point(p) for p in negative or []]
    if box is None and not positives:
        raise ConfigurationError("give a --box and/or at least one --point")
    check_output_file(out, image)
    volume_out = str(out).lower().endswith((".nii", ".nii.gz", ".nrrd", ".mha"))
    if slice_index is not None and not volume_out:
        loaded = plane = read_image_slice(image, slice_index, axis, modality)  # only that slice is read
    else:
        loaded = read_image(image, modality)
        if isinstance(loaded, Image2D):
            if slice_index is not None:
                raise ConfigurationError(f"{image} is a 2D image: --slice does not apply")
            plane = loaded
        else:
            if slice_index is None:
                raise ConfigurationError(f"{image} is a volume {loaded.shape}: choose a slice with --slice")
            if not 0 <= axis < 3:
                raise ConfigurationError(f"--axis {axis} is not an axis of the volume {image} (0, 1 or 2)")
            if not 0 <= slice_index < loaded.shape[axis]:
                raise ConfigurationError(
                    f"--slice {slice_index} is outside {image}: axis {axis} has slices 0..{loaded.shape[axis] - 1}"
                )
            plane = loaded.slice(slice_index, axis)
    intensity = get_preset(preset) if preset else default_preset(plane.modality, plane.is_rgb)
    points = positives + negatives
    try:
        prompt = Prompt(
            points=np.array(points, dtype=np.float64) if points else None,
            labels=np.array([1] * len(positives) + [0] * len(negatives)) if points else None,
            box=None if box is None else np.array(box, dtype=np.float64),
        ).fitted_to(plane.shape)
    except ValueError as error:
        raise ConfigurationError(f"{image}: impossible prompt: {error}") from None
    if prompt.meta.get("box_clipped"):
        typer.echo(f"note: the box was clipped to the image: {prompt.box.tolist()}", err=True)
    use_multimask = multimask if multimask is not None else (box is None and len(points) == 1)
    predictor = SamiaPredictor(build_model(model, checkpoint, device))
    predictor.set_image(to_rgb_uint8(plane, intensity))
    prediction = predictor.predict(prompt, use_multimask)
    chosen = prediction.best_index
    mask = prediction.masks[chosen]
    if isinstance(loaded, Image2D) or not volume_out:
        written = write_mask(out, mask, reference=plane)
    else:
        full = np.zeros(loaded.shape, dtype=bool)
        index = [slice(None)] * 3
        index[axis] = slice_index
        full[tuple(index)] = mask
        written = write_mask(out, full, reference=loaded)
    typer.echo(
        f"wrote {written}: {int(mask.sum())} pixels, predicted IoU {prediction.iou_predictions[chosen]:.3f}, "
        f"preset {intensity.name}"
    )


def _parse_point(text: str) -> tuple[float, float]:
    from samia.errors import ConfigurationError

    try:
        x, y = (float(v) for v in text.replace(" ", "").split(","))
    except ValueError as error:
        raise ConfigurationError(f"point {text!r} is not 'X,Y'") from error
    return x, y
