"""The CVPR 2024 "Segment Anything in Medical Images on a Laptop" challenge's ``.npz`` files.

One file per case: ``imgs`` (3D: ``(D, H, W)`` uint8; 2D: ``(H, W, 3)`` uint8), ``gts`` (the label
map of the same grid, in training files), ``boxes`` (3D: ``N x 6`` ``[x_min, y_min, z_min, x_max,
y_max, z_max]``; 2D: ``N x 4``), ``spacing`` (3D). Predictions go back as ``segs`` (the label map,
object ``k`` = row ``k - 1`` of ``boxes``).

``spacing`` is read in ITK order ``(x, y, z)`` and reversed to samia's ``(z, y, x)``: the
challenge's data preparation (``pre_CT_MR.py``) stores ``SimpleITK.Image.GetSpacing()``, which is
``(x, y, z)``. Its metric script (``CVPR24_compute_metrics.py``) hands the same three numbers to the
surface distance on ``(D, H, W)`` arrays, i.e. reads them as ``(z, y, x)``; the two agree only when
the slice spacing equals the in-plane one. samia follows the file's writer, so distances are in mm.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from samia.errors import CorruptFileError, InvalidImageError
from samia.files import atomic_write
from samia.io.limits import check_declared_size
from samia.types import Image2D, Volume, float_triple

IMAGE_KEY, LABEL_KEY, BOXES_KEY, SPACING_KEY, SEGS_KEY = "imgs", "gts", "boxes", "spacing", "segs"


def _read(path: Path, required: str, optional: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The ``required`` array and those of ``optional`` the archive holds, the archive opened once.

    Raises:
        InvalidImageError: ``required`` is missing (the message lists what the file holds).
        CorruptFileError: not a readable ``.npz`` archive.
    """
    _check_members(path)
    try:
        with np.load(path, allow_pickle=False) as content:
            if required not in content.files:
                raise InvalidImageError(
                    path, f"has no {required!r} array (it holds {', '.join(content.files) or 'nothing'})"
                )
            return {key: np.asarray(content[key]) for key in (required, *optional) if key in content.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise CorruptFileError(path, f"cannot be read as a NumPy .npz archive ({error})") from error


def _check_members(path: Path) -> None:
    """Refuse, from the ``.npy`` headers alone (nothing is decompressed past them), an archive member
    that is not a real-valued numeric array (complex, object, string, record) or declares more than
    :func:`~samia.io.limits.max_pixels` elements, as the PNG and NIfTI readers check headers."""
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.infolist():
                if not member.filename.endswith(".npy"):
                    continue
                with archive.open(member) as stream:
                    version = np.lib.format.read_magic(stream)
                    read_header = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read_header(stream)
                name = member.filename[: -len(".npy")]
                if dtype.kind not in "biuf":
                    raise InvalidImageError(
                        path,
                        f"array {name!r} has dtype {dtype} ({_KIND_NAMES.get(dtype.kind, 'not numeric')}); "
                        "samia reads integer, float and boolean arrays",
                    )
                check_declared_size(f"{path} (array {name!r})", shape)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise CorruptFileError(path, f"cannot be read as a NumPy .npz archive ({error})") from error


_KIND_NAMES = {
    "c": "complex",
    "O": "Python objects",
    "U": "text",
    "S": "bytes",
    "V": "records",
    "M": "dates",
    "m": "times",
}


def read_npz(path: Path, key: str = IMAGE_KEY) -> Image2D | Volume:
    """``imgs`` (or ``gts``) of a challenge file: an :class:`Image2D` for ``(H, W)`` and for
    ``(H, W, 3)`` in a file without ``spacing`` (the challenge's 2D cases), else a :class:`Volume`
    (spacing from ``spacing``, module docstring). The archive is opened once."""
    arrays = _read(path, key, (SPACING_KEY,))
    array, spacing = arrays[key], arrays.get(SPACING_KEY)
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3 and spacing is None):
        return Image2D(array, path=str(path))
    if array.ndim != 3:
        raise InvalidImageError(path, f"{key!r} has shape {array.shape}; expected (D, H, W), (H, W, 3) or (H, W)")
    if spacing is None:
        raise InvalidImageError(path, f"{key!r} is a volume {array.shape} but the file has no 'spacing'")
    values = spacing.astype(np.float64).ravel()
    if values.size != 3 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise InvalidImageError(path, f"'spacing' must hold three positive numbers, got {values.tolist()}")
    return Volume(array, spacing=float_triple(values[::-1]), path=str(path))


def read_boxes(path: Path) -> np.ndarray:
    """``(N, 6)`` (3D) or ``(N, 4)`` (2D) int64 boxes of a challenge file."""
    boxes = _read(path, BOXES_KEY)[BOXES_KEY]
    if boxes.ndim != 2 or boxes.shape[1] not in (4, 6) or len(boxes) == 0:
        raise InvalidImageError(path, f"'boxes' has shape {boxes.shape}; expected N x 6 (3D) or N x 4 (2D), N >= 1")
    if boxes.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(boxes).all(axis=1) | (np.mod(boxes, 1) != 0).any(axis=1))
        if bad.size:
            raise InvalidImageError(
                path, f"'boxes' row {int(bad[0])} is {boxes[bad[0]].tolist()}; boxes are whole pixel indices"
            )
    return boxes.astype(np.int64)


def write_segs(path: Path, segs: np.ndarray) -> Path:
    """Write ``segs`` (the label map) as the challenge's prediction file (compressed, atomically)."""

    def write(temporary: Path) -> None:
        with open(temporary, "wb") as handle:
            np.savez_compressed(handle, segs=segs)  # the challenge's key, SEGS_KEY

    return atomic_write(path, write)
