"""Files that lie, datasets and output checks for the hostile-input tests."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from samia.io import write_label_map


def one_error_line(stderr: str) -> str:
    """The single ``error: ...`` line of a refused command (nothing else on stderr)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims ``width x height`` pixels (the data is for 1 x 1)."""
    Image.fromarray(np.zeros((1, 1), np.uint8)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = data[12:29]  # b"IHDR" + 13 bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))
    return path


def nifti_claiming(path: Path, shape: tuple[int, ...]) -> Path:
    """A small ``.nii`` whose header declares ``shape`` float32 voxels but holds 100 KB of data."""
    import nibabel as nib

    image = nib.Nifti1Image(np.zeros((10, 10, 10), np.float32), np.eye(4))
    image.header.set_data_shape(shape)
    header = image.header.binaryblock
    path.write_bytes(header + b"\0" * 4 + b"\0" * 100_000)
    return path


def folder_dataset(root: Path, cases: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """A folder-pairs dataset: ``name -> (uint8 image, label map)`` as PNG files."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(exist_ok=True)
    for name, (image, label) in cases.items():
        Image.fromarray(image).save(root / "images" / f"{name}.png")
        write_label_map(root / "masks" / f"{name}.png", label)
    return root


def square_case(seed: int = 0, side: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 80, (side, side)).astype(np.uint8)
    label = np.zeros((side, side), np.uint8)
    label[10:40, 12:44] = 1
    image[label == 1] += 150
    return image, label
